"""librdkafka configuration for our readers: defaults, rules, and secret redaction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schemas.errors import ConfigError
from schemas.secrets import REDACTED, is_secret_key, redact, redact_text

__all__ = [
    "REDACTED",
    "check_settings",
    "consumer_config",
    "is_secret_key",
    "redact",
    "redact_text",
]

# Settings the reader relies on; a user value that contradicts them is a configuration error.
# A read never creates a topic: a misspelled one is an error naming it, not an empty run.
_REQUIRED = {
    "enable.partition.eof": True,
    "enable.auto.commit": False,
    "allow.auto.create.topics": False,
}
_WHY = {
    "enable.partition.eof": "bounded reads end at each partition's end",
    "enable.auto.commit": "offsets are tracked by the pipeline and its sink, not by auto-commit",
    "allow.auto.create.topics": "a read never creates the topic it reads",
}
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
                f"the reader needs {key}={str(needed).lower()}: {_WHY[key]}",
            )
    return {**_DEFAULTS, **user_config, **_REQUIRED, "bootstrap.servers": bootstrap_servers}


_PROTOCOLS = ("plaintext", "ssl", "sasl_plaintext", "sasl_ssl")


def check_settings(user_config: Mapping[str, Any]) -> None:
    """Raises ConfigError when librdkafka rejects a setting's name or value.

    Checked offline, on this machine, before anything is built: a consumer is made
    (and closed) with the settings, except that ``security.protocol`` is checked by
    name only, so no certificate or Kerberos set-up is needed where the job is
    launched. Secret values never appear in the message.

    >>> check_settings({"client.id": "me", "security.protocol": "SASL_SSL"})
    >>> check_settings({"sasl.pasword": "hunter2"})
    Traceback (most recent call last):
    schemas.errors.ConfigError: consumer_config: No such configuration property: "sasl.pasword"
    """
    from confluent_kafka import Consumer, KafkaException

    protocol = str(user_config.get("security.protocol", "plaintext"))
    if protocol.lower() not in _PROTOCOLS:
        raise ConfigError(
            "consumer_config['security.protocol']",
            f"expected one of {', '.join(_PROTOCOLS)}, got {protocol!r}",
        )
    probe = {k: v for k, v in user_config.items() if k != "security.protocol"}
    try:  # log_level 0: a consumer without a broker would log that it has none
        Consumer({**probe, "group.id": "dataplane-check", "log_level": 0}).close()
    except KafkaException as err:
        detail = err.args[0].str() if err.args else str(err)
        raise ConfigError("consumer_config", redact_text(detail, user_config)) from None
    except (TypeError, ValueError) as err:
        raise ConfigError("consumer_config", redact_text(str(err), user_config)) from None


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)
