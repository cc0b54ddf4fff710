"""The library's exception hierarchy: one root, typed subclasses, retryable errors apart."""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DataplaneError",
    "RetryableError",
    "SinkCommitError",
    "SourceUnavailableError",
]


class DataplaneError(Exception):
    """Root of every error raised by beam-dataplane."""


class ConfigError(DataplaneError, ValueError):
    """A parameter or flag has a wrong value; the message names it and what was expected.

    Attributes:
        name: the parameter or flag at fault, e.g. ``"start"`` or ``"--source"``.
        detail: what is wrong with it (the message without the name).

    >>> err = ConfigError("size_s", "must be positive, got 0")
    >>> str(err), str(err.naming("--window_s"))
    ('size_s: must be positive, got 0', '--window_s: must be positive, got 0')
    """

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name, self.detail = name, message

    def naming(self, name: str) -> ConfigError:
        """The same error, naming ``name`` (the flag a parameter came from) instead."""
        return ConfigError(name, self.detail)


class RetryableError(DataplaneError):
    """A transient failure: the same call may succeed later."""


class SourceUnavailableError(RetryableError):
    """The source system (broker, stream, subscription) could not be reached in time."""


class SinkCommitError(DataplaneError):
    """A sink gave up committing a batch after its bounded number of retries."""
