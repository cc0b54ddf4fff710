"""Pipeline options shared by our pipelines (PipelineOptions subclasses: ``--help`` lists them)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from apache_beam.options.pipeline_options import PipelineOptions

from schemas.base import SchemaRegistry, Version
from schemas.factory import open_registry
from transforms.errors import ConfigError
from transforms.sinks.compaction import DEFAULT_RETENTION_HOURS, CompactionSchedule
from transforms.validate import DEFAULT_MAX_RECORD_BYTES

__all__ = [
    "DeltaSinkOptions",
    "RegistryOptions",
    "RunOptions",
    "SourceOptions",
    "StorageOptions",
    "help_requested",
    "kafka_settings",
    "max_record_bytes",
    "open_registry_from",
    "print_help",
    "require",
    "storage_options_from",
    "subject_version",
]


class SourceOptions(PipelineOptions):
    """Where records come from."""

    @classmethod
    def _add_argparse_args(cls, parser: Any) -> None:
        parser.add_argument(
            "--source",
            help="source URI: kafka://HOST:PORT/TOPIC, kinesis://STREAM, "
            "pubsub://projects/P/subscriptions/S or file:///PATH/*.jsonl",
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
            "--source_timeout_s",
            type=float,
            default=30.0,
            help="how long to wait for the Kafka broker / Kinesis stream at start (retrying) "
            "before failing with a clear error; raise it to ride out a broker restart",
        )
        parser.add_argument(
            "--partition_discovery_s",
            type=float,
            default=30.0,
            help="a streaming Kafka read looks for partitions added to its topic this often "
            "and reads them from their start; 0 turns it off",
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


class RunOptions(PipelineOptions):
    """How a run reports while it goes on."""

    @classmethod
    def _add_argparse_args(cls, parser: Any) -> None:
        parser.add_argument(
            "--progress_interval_s",
            type=float,
            default=10.0,
            help="off a terminal, a streaming run logs its progress (records read per second, "
            "rows committed, lag, watermark) this often; 0 turns it off",
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
        parser.add_argument(
            "--no_resume",
            dest="resume",
            action="store_false",
            default=True,
            help="read Kafka partitions / Kinesis shards from the source's start position "
            "instead of resuming after the progress recorded in the output tables' logs",
        )
        parser.add_argument(
            "--compact_every_s",
            type=float,
            default=0.0,
            help="while running, compact each output Delta table (optimize small files into "
            "large ones, then vacuum) at most this often, right after one of its commits; "
            "0 turns it off",
        )
        parser.add_argument(
            "--compact_retention_hours",
            type=int,
            default=DEFAULT_RETENTION_HOURS,
            help="compaction's vacuum deletes files unreferenced for longer than this "
            f"(default {DEFAULT_RETENTION_HOURS}, Delta's own). It may not be below the table's "
            "delta.deletedFileRetentionDuration: shorter frees disk sooner, but readers of "
            "older versions (long queries, time travel) then fail on missing files",
        )

    def compaction(self) -> CompactionSchedule | None:
        """The compaction schedule the flags ask for; None when it is off.

        >>> DeltaSinkOptions(["--compact_every_s", "60"]).compaction()
        CompactionSchedule(every_s=60.0, retention_hours=168)
        >>> DeltaSinkOptions([]).compaction() is None
        True
        """
        every_s, retention = self.compact_every_s, self.compact_retention_hours
        if every_s < 0:
            raise ConfigError("--compact_every_s", f"must be 0 (off) or more, got {every_s}")
        if retention < 0:
            raise ConfigError("--compact_retention_hours", f"must be 0 or more, got {retention}")
        return CompactionSchedule(every_s, retention) if every_s > 0 else None


class RegistryOptions(PipelineOptions):
    """Which schemas records are decoded and validated with."""

    @classmethod
    def _add_argparse_args(cls, parser: Any) -> None:
        parser.add_argument(
            "--registry",
            help="a schema directory (<subject>/<version>.avsc|json) or a Confluent-compatible "
            "registry URL http(s)://host:port; default: the schemas packaged with the library",
        )
        parser.add_argument(
            "--registry_config",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="a SchemaRegistryClient setting (repeatable), e.g. basic.auth.user.info=u:p",
        )
        parser.add_argument(
            "--registry_config_file",
            help="a properties file of registry settings (keeps secrets off the command line)",
        )
        parser.add_argument("--subject", help="the registry subject values must belong to")
        parser.add_argument(
            "--subject_version",
            default="latest",
            help="the reader schema version values are decoded into (an integer or latest)",
        )
        parser.add_argument(
            "--schema_format",
            choices=("auto", "avro", "json"),
            default="auto",
            help="auto: the subject's format (JSON subjects also take unframed JSON); "
            "avro or json: only that format",
        )
        parser.add_argument(
            "--max_record_bytes",
            type=int,
            default=DEFAULT_MAX_RECORD_BYTES,
            help="a record carrying more bytes than this (value, key and headers) becomes a "
            f"RecordTooLarge dead letter before any decoding (default {DEFAULT_MAX_RECORD_BYTES}, "
            "1 MiB)",
        )


class StorageOptions(PipelineOptions):
    """Credentials and endpoints of the object store the outputs live in."""

    @classmethod
    def _add_argparse_args(cls, parser: Any) -> None:
        parser.add_argument(
            "--storage_option",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="a delta-rs storage option for every output (repeatable), e.g. "
            "AWS_ENDPOINT_URL=http://127.0.0.1:5000, AWS_REGION=eu-west-1, AWS_ALLOW_HTTP=true; "
            "unset keys come from the environment (AWS_*, STORAGE_EMULATOR_HOST)",
        )
        parser.add_argument(
            "--storage_config_file",
            help="a properties file of storage options (keeps keys off the command line)",
        )


# Beam's own S3 flags (S3Options) and the storage options they mean.
_BEAM_S3_FLAGS = {
    "s3_endpoint_url": "AWS_ENDPOINT_URL",
    "s3_region_name": "AWS_REGION",
    "s3_access_key_id": "AWS_ACCESS_KEY_ID",
    "s3_secret_access_key": "AWS_SECRET_ACCESS_KEY",
    "s3_session_token": "AWS_SESSION_TOKEN",
}


def storage_options_from(options: PipelineOptions) -> dict[str, str] | None:
    """Storage options from Beam's ``--s3_*`` flags, then the file, then ``--storage_option``.

    >>> storage_options_from(PipelineOptions(["--s3_endpoint_url=http://127.0.0.1:5000",
    ...                                       "--storage_option", "aws_allow_http=true"]))
    {'AWS_ENDPOINT_URL': 'http://127.0.0.1:5000', 'AWS_ALLOW_HTTP': 'true'}
    """
    every = options.get_all_options()
    found = {key: str(every[flag]) for flag, key in _BEAM_S3_FLAGS.items() if every.get(flag)}
    if found.get("AWS_ENDPOINT_URL", "").startswith("http://"):
        found["AWS_ALLOW_HTTP"] = "true"
    storage = options.view_as(StorageOptions)
    settings = _settings(
        "--storage_option",
        storage.storage_option,
        "--storage_config_file",
        storage.storage_config_file,
    )
    found.update({key.upper(): value for key, value in settings.items()})
    return found or None


def open_registry_from(options: RegistryOptions) -> SchemaRegistry:
    """The registry that ``--registry`` and its settings name."""
    config = _settings(
        "--registry_config",
        options.registry_config,
        "--registry_config_file",
        options.registry_config_file,
    )
    return open_registry(options.registry, config)


def subject_version(options: RegistryOptions) -> Version:
    """``--subject_version`` as an int, or ``"latest"``.

    >>> subject_version(RegistryOptions(["--subject_version", "2"]))
    2
    """
    value = str(options.subject_version).strip()
    if value == "latest":
        return "latest"
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(
            "--subject_version", f"expected a version number >= 1 or latest, got {value!r}"
        )
    return int(value)


def max_record_bytes(options: RegistryOptions) -> int:
    """``--max_record_bytes``, checked: a positive number of bytes.

    >>> max_record_bytes(RegistryOptions(["--max_record_bytes=64"]))
    64
    >>> max_record_bytes(RegistryOptions([]))  # 1 MiB
    1048576
    """
    value = options.max_record_bytes
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(
            "--max_record_bytes", f"expected a positive number of bytes, got {value!r}"
        )
    return value


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
    return _settings(
        "--kafka_config", options.kafka_config, "--kafka_config_file", options.kafka_config_file
    )


def _settings(flag: str, items: list[str], file_flag: str, file: str | None) -> dict[str, str]:
    """Settings from a properties file, then KEY=VALUE flags (which win)."""
    settings: dict[str, str] = {}
    if file:
        settings.update(_read_properties(file_flag, Path(file)))
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(flag, f"expected KEY=VALUE, got {item.split('=')[0]!r}")
        settings[key.strip()] = value.strip()
    return settings


def _read_properties(flag: str, path: Path) -> dict[str, str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise ConfigError(flag, f"cannot read {path}: {err.strerror}") from None
    settings = {}
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith(("#", "!")):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ConfigError(flag, f"{path}:{number}: expected KEY=VALUE")
        settings[key.strip()] = value.strip()
    return settings


def help_requested(argv: Sequence[str] | None) -> bool:
    """Whether the command line asks for help (Beam's own parser would print none)."""
    import sys

    return any(flag in ("-h", "--help") for flag in (sys.argv[1:] if argv is None else argv))


def print_help(prog: str, description: str, groups: Sequence[type[PipelineOptions]]) -> None:
    """Prints every flag of ``groups`` (and Beam's runner flags), grouped by class."""
    from apache_beam.options.pipeline_options import StandardOptions

    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog="--profile NAME [--profiles_file FILE] puts a named runner profile's flags "
        "first (see runners/profiles.yaml). Any other Beam pipeline option (e.g. --project, "
        "--temp_location, --job_endpoint) is passed to the runner unchanged.",
    )
    for group in [*groups, StandardOptions]:
        section = parser.add_argument_group(group.__name__, (group.__doc__ or "").strip())
        group._add_argparse_args(section)  # type: ignore[attr-defined]
    parser.print_help()
