"""Which settings hold secrets, and how to keep them out of logs, display data and errors."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["REDACTED", "is_secret_key", "redact", "redact_text", "redact_url"]

REDACTED = "***"
_SECRET_KEY = re.compile(
    r"password|secret|token|jaas|oauthbearer\.config|\.pem$|key\.pem|keystore|credential"
    r"|user\.info",
    re.IGNORECASE,
)


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


def redact_url(url: str) -> str:
    """``url`` with any password in its userinfo replaced.

    >>> redact_url("https://bob:hunter2@registry.example:8081/x")
    'https://bob:***@registry.example:8081/x'
    """
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:{REDACTED}@{parts.hostname}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))
