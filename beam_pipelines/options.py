"""Pipeline options shared by our pipelines (PipelineOptions subclasses: ``--help`` lists them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from apache_beam.options.pipeline_options import PipelineOptions

from transforms.errors import ConfigError

__all__ = ["DeltaSinkOptions", "SourceOptions", "kafka_settings"]


class SourceOptions(PipelineOptions):
    """Where records come from."""

    @classmethod
    def _add_argparse_args(cls, parser: Any) -> None:
        parser.add_argument(
            "--source",
            help="source URI, e.g. kafka://127.0.0.1:9092/tweets?group=g&start=earliest",
        )
        parser.add_argument(
            "--bounded",
            action="store_true",
            default=False,
            help="stop at the end of every partition as of the start (batch run)",
        )
        parser.add_argument(
            "--max_records", type=int, default=0, help="stop after this many records (bounded)"
        )
        parser.add_argument(
            "--kafka_config",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="a librdkafka setting (repeatable), e.g. security.protocol=SASL_SSL",
        )
        parser.add_argument(
            "--kafka_config_file",
            help="a properties file of librdkafka settings (keeps secrets off the command line)",
        )


class DeltaSinkOptions(PipelineOptions):
    """Where results and dead letters land."""

    @classmethod
    def _add_argparse_args(cls, parser: Any) -> None:
        parser.add_argument("--output", help="Delta table path or URI for results")
        parser.add_argument("--dlq", help="Delta table path or URI for dead letters")
        parser.add_argument(
            "--app_id",
            help="names this pipeline's progress in the table log (default: the pipeline name)",
        )
        parser.add_argument(
            "--batch_size", type=int, default=10_000, help="rows per Delta commit at most"
        )
        parser.add_argument(
            "--max_batch_latency_s",
            type=float,
            default=5.0,
            help="longest a row waits for its batch in streaming",
        )


def require(options: PipelineOptions, flag: str, example: str) -> str:
    """The value of ``--flag``; a ConfigError naming it when missing."""
    value = options.get_all_options().get(flag)
    if not value:
        raise ConfigError(f"--{flag}", f"required, e.g. --{flag}={example}")
    return str(value)


def kafka_settings(options: SourceOptions) -> dict[str, str]:
    """librdkafka settings from ``--kafka_config_file`` then ``--kafka_config`` flags.

    >>> kafka_settings(SourceOptions(["--kafka_config", "client.id=x"]))
    {'client.id': 'x'}
    """
    settings: dict[str, str] = {}
    if options.kafka_config_file:
        settings.update(_read_properties(Path(options.kafka_config_file)))
    for item in options.kafka_config:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError("--kafka_config", f"expected KEY=VALUE, got {item.split('=')[0]!r}")
        settings[key.strip()] = value.strip()
    return settings


def _read_properties(path: Path) -> dict[str, str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise ConfigError("--kafka_config_file", f"cannot read {path}: {err.strerror}") from None
    settings = {}
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith(("#", "!")):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ConfigError("--kafka_config_file", f"{path}:{number}: expected KEY=VALUE")
        settings[key.strip()] = value.strip()
    return settings
