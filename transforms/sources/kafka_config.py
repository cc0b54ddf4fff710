"""librdkafka configuration for our readers: defaults, rules, and secret redaction."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from transforms.errors import ConfigError

__all__ = ["REDACTED", "consumer_config", "is_secret_key", "redact", "redact_text"]

REDACTED = "***"
_SECRET_KEY = re.compile(
    r"password|secret|token|jaas|oauthbearer\.config|\.pem$|key\.pem|keystore|credential",
    re.IGNORECASE,
)

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


def is_secret_key(key: str) -> bool:
    """Whether a librdkafka setting holds a secret.

    >>> [is_secret_key(k) for k in ("sasl.password", "ssl.key.pem", "bootstrap.servers")]
    [True, True, False]
    """
    return bool(_SECRET_KEY.search(key))


def redact(config: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``config`` safe to log or display: secret values replaced.

    >>> redact({"sasl.username": "bob", "sasl.password": "hunter2"})
    {'sasl.username': 'bob', 'sasl.password': '***'}
    """
    return {k: (REDACTED if is_secret_key(k) else v) for k, v in config.items()}


def redact_text(text: str, config: Mapping[str, Any]) -> str:
    """``text`` with every secret value of ``config`` replaced (for error messages).

    >>> redact_text("auth failed for hunter2", {"sasl.password": "hunter2"})
    'auth failed for ***'
    """
    for key, value in config.items():
        if is_secret_key(key) and isinstance(value, str) and value:
            text = text.replace(value, REDACTED)
    return text


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
