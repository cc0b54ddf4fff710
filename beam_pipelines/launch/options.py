"""Pipeline options shared by our pipelines (PipelineOptions subclasses: ``--help`` lists them)."""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from apache_beam.options.pipeline_options import PipelineOptions

from schemas.base import SchemaRegistry, Version
from schemas.errors import ConfigError
from schemas.factory import open_registry
from schemas.secrets import (
    REDACTED,
    SecretUnavailableError,
    conceal,
    has_reference,
    is_secret_key,
    keep,
    redact_text,
    resolve,
    url_password,
)
from transforms.checkpoint.storage import check_output_location
from transforms.sinks.compaction import DEFAULT_RETENTION_HOURS, CompactionSchedule
from transforms.sources.kafka_config import check_settings
from transforms.validate import DEFAULT_MAX_RECORD_BYTES

__all__ = [
    "DeltaSinkOptions",
    "RegistryOptions",
    "RunOptions",
    "SourceOptions",
    "StorageOptions",
    "check_outputs",
    "help_requested",
    "kafka_settings",
    "max_record_bytes",
    "metrics_port",
    "open_registry_from",
    "print_help",
    "required_flag",
    "shield_argv",
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
        parser.add_argument(
            "--metrics_port",
            default=None,
            metavar="PORT",
            help="serve Prometheus metrics at http://ADDRESS:PORT/metrics while the run goes "
            "on (local runners, PortableRunner with LOOPBACK workers); 0 picks a free port",
        )
        parser.add_argument(
            "--metrics_address",
            default="127.0.0.1",
            help="the address /metrics listens on (0.0.0.0: every interface, e.g. in a "
            "container scraped from outside)",
        )
        parser.add_argument(
            "--lineage",
            default=None,
            metavar="URL|file:PATH|console",
            help="send OpenLineage events (START, RUNNING, COMPLETE/FAIL) to this HTTP "
            "endpoint (e.g. Marquez at http://host:5000), append them to a file, or print "
            "them; without it the OpenLineage client's own configuration applies "
            "(openlineage.yml, OPENLINEAGE_URL, OPENLINEAGE__TRANSPORT__* variables), if any",
        )
        parser.add_argument(
            "--lineage_namespace",
            default=None,
            help="the OpenLineage job namespace (default: $OPENLINEAGE_NAMESPACE or dataplane)",
        )
        parser.add_argument(
            "--lineage_interval_s",
            type=float,
            default=60.0,
            help="a streaming run sends an OpenLineage RUNNING event this often",
        )


def metrics_port(options: PipelineOptions) -> int | None:
    """The port ``--metrics_port`` asks for; None when it is not given.

    >>> metrics_port(PipelineOptions(["--metrics_port", "9464"]))
    9464
    >>> metrics_port(PipelineOptions(["--metrics_port", "70000"]))
    Traceback (most recent call last):
    ...
    schemas.errors.ConfigError: --metrics_port: expected a port from 0 to 65535, got 70000
    """
    value = options.view_as(RunOptions).metrics_port
    if value is None:
        return None
    text = str(value).strip()
    port = int(text) if re.fullmatch(r"[+-]?[0-9]+", text) else None
    if port is None or not 0 <= port <= 65535:
        raise ConfigError("--metrics_port", f"expected a port from 0 to 65535, got {text}")
    return port


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
            "--schema_mode",
            choices=("strict", "merge"),
            default="strict",
            help="strict: rows must fit the output table's schema; merge: columns the "
            "pipeline's schema adds (nullable) are added to an existing table (delta-rs "
            "schema merge)",
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


# Flags whose values can carry a secret, and how (see shield_argv).
SECRET_SETTING_FLAGS = ("--kafka_config", "--registry_config", "--storage_option")
SECRET_FILE_FLAGS = ("--kafka_config_file", "--registry_config_file", "--storage_config_file")
SECRET_VALUE_FLAGS = ("--s3_secret_access_key", "--s3_session_token")
SECRET_URL_FLAGS = ("--registry",)


def shield_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` with each secret value replaced by a reference to it, kept in this process.

    Secret settings of ``--kafka_config``, ``--registry_config`` and ``--storage_option``
    (see :func:`~schemas.secrets.is_secret_key`), the values of Beam's
    ``--s3_secret_access_key`` and ``--s3_session_token``, and a password in a
    ``--registry`` URL become ``${dataplane-secret:ID}``: the options every runner
    receives, shows and logs hold no secret. Values read from the ``*_config_file``
    flags never enter the options. ``${env:...}`` / ``${gcp-secret:...}`` references
    are kept as they are.

    Raises:
        ConfigError: ``--source`` carries a password (no source reads one from its URI).

    >>> shield_argv(["--kafka_config", "sasl.password=hunter2", "--kafka_config=client.id=me"])
    ... # doctest: +ELLIPSIS
    ['--kafka_config', 'sasl.password=${dataplane-secret:...}', '--kafka_config=client.id=me']
    """
    shielded: list[str] = []
    waiting: str | None = None  # a flag whose value is the next argument
    for arg in argv:
        if waiting is not None:
            shielded.append(_shielded(waiting, arg))
            waiting = None
            continue
        flag, sep, value = arg.partition("=")
        if flag not in (*SECRET_SETTING_FLAGS, *SECRET_VALUE_FLAGS, *SECRET_URL_FLAGS, "--source"):
            shielded.append(arg)
        elif sep:
            shielded.append(f"{flag}={_shielded(flag, value)}")
        else:
            shielded.append(arg)
            waiting = flag
    return shielded


def _shielded(flag: str, value: str) -> str:
    if flag == "--source":
        if url_password(value) is not None:
            raise ConfigError(
                "--source",
                "a password in the source URI is not read; give credentials with "
                "--kafka_config (sasl.username, sasl.password) or the environment",
            )
        return value
    if flag in SECRET_VALUE_FLAGS:
        return value if has_reference(value) else _reference(value.strip())
    if flag in SECRET_URL_FLAGS:
        return _shielded_url(value)
    key, sep, setting = value.partition("=")
    if not sep:
        return REDACTED  # not KEY=VALUE: refused when read, without showing it
    if not is_secret_key(key.strip()) or has_reference(setting):
        return value
    return f"{key}={_reference(setting.strip())}"


def _reference(value: str) -> str:
    """A reference to ``value`` (a literal: ``$${`` stands for ``${``), kept in this process."""
    return keep(resolve(value)).template


def _shielded_url(value: str) -> str:
    urls = []
    for url in value.split(","):
        parts = urlsplit(url.strip())
        password = parts.password if parts.scheme in ("http", "https") else None
        if password is None or has_reference(url):
            urls.append(url)
            continue
        host = parts.netloc.rpartition("@")[2]
        netloc = f"{parts.username}:{_reference(password)}@{host}"
        urls.append(urlunsplit(parts._replace(netloc=netloc)))
    return ",".join(urls)


def storage_options_from(options: PipelineOptions) -> dict[str, str] | None:
    """Storage options from Beam's ``--s3_*`` flags, then the file, then ``--storage_option``.

    Secret values are :class:`~schemas.secrets.Secret`\\s (see :func:`shield_argv`).

    >>> storage_options_from(PipelineOptions(["--s3_endpoint_url=http://127.0.0.1:5000",
    ...                                       "--storage_option", "aws_allow_http=true"]))
    {'AWS_ENDPOINT_URL': 'http://127.0.0.1:5000', 'AWS_ALLOW_HTTP': 'true'}
    """
    every = options.get_all_options()
    found = {
        key: _secured(f"--{flag}", key, str(every[flag]))
        for flag, key in _BEAM_S3_FLAGS.items()
        if every.get(flag)
    }
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
    """The registry that ``--registry`` and its settings name (settings checked here)."""
    config = _settings(
        "--registry_config",
        options.registry_config,
        "--registry_config_file",
        options.registry_config_file,
    )
    spec = options.registry
    try:
        if spec and resolve(spec).startswith(("http://", "https://")):
            spec, config = _userinfo_to_config(spec, config)
            _check_registry_config(spec, config, options)
        elif spec:
            spec = resolve(spec)
    except SecretUnavailableError as err:
        raise ConfigError("--registry", str(err)) from None
    try:
        return open_registry(spec, config)
    except ConfigError as err:
        flag = {"registry_config": "--registry_config", "registry": "--registry"}
        raise err.naming(flag.get(err.name, err.name)) from None


def _userinfo_to_config(spec: str, config: dict[str, str]) -> tuple[str, dict[str, str]]:
    """The registry URLs without userinfo, and a password in them as ``basic.auth.user.info``.

    The registry client's HTTP library logs each request's URL: credentials in the
    URL would be in the logs. (The client, too, takes one user info for all URLs.)
    """
    resolved = resolve(spec)
    urls = [urlsplit(url.strip()) for url in resolved.split(",")]
    with_password = [n for n, url in enumerate(urls) if url.password is not None]
    if not with_password:
        return resolved, config
    if "basic.auth.user.info" in config:
        raise ConfigError(
            "--registry_config",
            "basic.auth.user.info and a password in --registry: give the credentials once",
        )
    bare = ",".join(urlunsplit(u._replace(netloc=u.netloc.rpartition("@")[2])) for u in urls)
    first = urls[with_password[0]]
    user_info = f"{unquote(first.username or '')}:{unquote(first.password or '')}"
    try:  # a reference stays one (resolved again on each worker)
        given = urlsplit(spec.split(",")[with_password[0]].strip())
        template = f"{unquote(given.username or '')}:{unquote(given.password or '')}"
        same = has_reference(template) and resolve(template) == user_info
    except (ValueError, IndexError):
        same = False
    return bare, {**config, "basic.auth.user.info": resolve(template) if same else keep(user_info)}


def _check_registry_config(url: str, config: dict[str, str], options: RegistryOptions) -> None:
    """The registry client's own checks of its settings, offline (it connects lazily).

    The error names ``--registry_config_file`` when the refused setting came from the
    file (no ``--registry_config`` item is named in the client's message).
    """
    from confluent_kafka.schema_registry import SchemaRegistryClient

    try:
        SchemaRegistryClient({**config, "url": url})
    except (ValueError, TypeError) as err:
        shown = redact_text(str(err), {**config, "url": url})
        inline = {item.partition("=")[0].strip() for item in options.registry_config}
        from_file = options.registry_config_file and not any(key in shown for key in inline)
        raise ConfigError(
            "--registry_config_file" if from_file else "--registry_config", shown
        ) from None


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


def check_outputs(options: PipelineOptions, outputs: Mapping[str, bool]) -> None:
    """Checks the local outputs named in ``outputs`` (flag -> whether it is a Delta table).

    Raises:
        ConfigError: naming the flag, when its output cannot be written or (Delta) is a
            directory of other files (see
            :func:`~transforms.checkpoint.storage.check_output_location`).
    """
    every = options.get_all_options()
    for name, delta in outputs.items():
        value = every.get(name)
        if value:
            try:
                check_output_location(str(value), delta=delta)
            except ConfigError as err:
                raise err.naming(f"--{name}") from None


def required_flag(options: PipelineOptions, flag: str, *, example: str) -> str:
    """The value of ``--flag``; a ConfigError naming it (and an ``example`` value) when missing.

    >>> required_flag(PipelineOptions([]), "output", example="/tmp/lake/tweets")
    Traceback (most recent call last):
    ...
    schemas.errors.ConfigError: --output: required, e.g. --output=/tmp/lake/tweets
    """
    value = options.get_all_options().get(flag)
    if not value:
        raise ConfigError(f"--{flag}", f"required, e.g. --{flag}={example}")
    return str(value)


def kafka_settings(options: SourceOptions) -> dict[str, str]:
    """librdkafka settings from ``--kafka_config_file`` then ``--kafka_config`` flags, checked.

    Raises:
        ConfigError: naming the flag, when librdkafka rejects a setting's name or value.

    >>> kafka_settings(SourceOptions(["--kafka_config", "client.id=x"]))
    {'client.id': 'x'}
    """
    settings = _settings(
        "--kafka_config", options.kafka_config, "--kafka_config_file", options.kafka_config_file
    )
    try:
        check_settings(settings)
    except ConfigError as err:
        inline = {item.partition("=")[0].strip() for item in options.kafka_config}
        named = re.search(r'property:? "([^"]+)"', str(err))
        from_file = named is not None and named.group(1) not in inline
        file_flag = from_file and options.kafka_config_file
        raise ConfigError(
            "--kafka_config_file" if file_flag else "--kafka_config", err.detail
        ) from None
    return settings


def _settings(flag: str, items: list[str], file_flag: str, file: str | None) -> dict[str, str]:
    """Settings from a properties file, then KEY=VALUE flags (which win); secrets concealed."""
    settings: dict[str, str] = {}
    if file:
        for key, value in _read_properties(file_flag, Path(file)).items():
            settings[key] = _secured(file_flag, key, value)
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(flag, "expected KEY=VALUE, got an item without a key and '='")
        settings[key.strip()] = _secured(flag, key.strip(), value.strip())
    return settings


def _secured(flag: str, key: str, value: str) -> str:
    """A setting's value with its references resolved; a secret one as a Secret."""
    try:
        return conceal(value) if is_secret_key(key) else resolve(value)
    except SecretUnavailableError as err:
        raise ConfigError(flag, f"{key}: {err}") from None


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
