"""librdkafka configuration for our readers: defaults, rules, and secret redaction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from transforms.errors import ConfigError
from transforms.secrets import REDACTED, is_secret_key, redact, redact_text

__all__ = ["REDACTED", "consumer_config", "is_secret_key", "redact", "redact_text"]

# Settings the reader relies on; a user value that contradicts them is a configuration error.
_REQUIRED = {"enable.partition.eof": True, "enable.auto.commit": False}
_DEFAULTS: dict[str, Any] = {
    "group.id": "beam-dataplane",
    "enable.auto.offset.store": False,
    # Low fetch wait: librdkafka's 500 ms default makes small partitions crawl.
    "fetch.wait.max.ms": 20,
    "auto.offset.reset": "earliest",
    "socket.connection.setup.timeout.ms": 10000,
    "log.connection.close": False,
}


def consumer_config(bootstrap_servers: str, user_config: Mapping[str, Any]) -> dict[str, Any]:
    """The consumer configuration for a reader: our defaults under the user's settings.

    Raises:
        ConfigError: when ``bootstrap_servers`` is empty or a user setting contradicts
            what the reader needs (partition EOF events on, auto-commit off).

    >>> consumer_config("127.0.0.1:9092", {"security.protocol": "SASL_SSL"})["group.id"]
    'beam-dataplane'
    """
    if not bootstrap_servers:
        raise ConfigError("bootstrap_servers", "expected host:port[,host:port...], got nothing")
    for key, needed in _REQUIRED.items():
        if key in user_config and _as_bool(user_config[key]) != needed:
            raise ConfigError(
                f"consumer_config[{key!r}]",
                f"the reader needs {key}={str(needed).lower()}; offsets are tracked by the "
                "pipeline and its sink, not by auto-commit",
            )
    return {**_DEFAULTS, **user_config, **_REQUIRED, "bootstrap.servers": bootstrap_servers}


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)
