"""Which settings hold secrets, how they travel to workers, and how to keep them out of sight.

A secret setting's value is a :class:`Secret`: a ``str`` that works as the value
where it is used (librdkafka, delta-rs, pyarrow, the registry client), while its
pickle, ``repr`` and copies carry only a *template* naming where the value comes
from. So a pipeline's transforms, which every runner receives pickled, never
hold the value itself. Templates hold references:

``${env:NAME}``
    the environment variable NAME, read where the value is used (the launching
    machine, then each worker);
``${gcp-secret:projects/P/secrets/S/versions/V}``
    a Secret Manager secret version, read the same way (Dataflow);
``${dataplane-secret:ID}``
    a value given on the launching machine (a flag or a config file): kept in
    this process, and shipped to workers outside the job description by
    :class:`Shipment` (the environment of local worker processes, or a file
    staged with the job that workers find in ``$SEMI_PERSISTENT_DIRECTORY/staged``).

``$${`` stands for a literal ``${``.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import secrets as _random
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from schemas.errors import ConfigError

__all__ = [
    "REDACTED",
    "Secret",
    "SecretUnavailableError",
    "Shipment",
    "conceal",
    "has_reference",
    "is_secret_key",
    "keep",
    "redact",
    "redact_text",
    "redact_url",
    "resolve",
    "url_password",
]

REDACTED = "***"
_SECRET_KEY = re.compile(
    r"password|secret|token|jaas|oauthbearer\.config|\.pem$|key\.pem|keystore|credential"
    r"|user\.info|(account|access|master|sas|private|service_account)[._]?key$"
    r"|connection[._]?string",
    re.IGNORECASE,
)
_REFERENCE = re.compile(r"\$?\$\{(?P<kind>env|gcp-secret|dataplane-secret):(?P<name>[^}]+)\}")
# Where a staged shipment lands on a portable worker (Dataflow, Flink, PortableRunner).
_STAGED = "staged"
_ENV_PREFIX = "DATAPLANE_SECRET_"

_LAUNCH = _random.token_hex(8)  # this process's shipment: ids are <launch>.<n>
_NUMBERS = itertools.count()
_KEPT: dict[str, str] = {}  # id -> value given in this process
_IDS: dict[str, str] = {}  # value -> id, so a value read again keeps its id
_FOUND: dict[str, str] = {}  # reference -> value read from Secret Manager or a shipment
_USED: list[set[str]] = []  # ids referenced while a Shipment is open


class SecretUnavailableError(ConfigError):
    """A reference names a value that cannot be read here (unset variable, unknown id...)."""


class Secret(str):
    """A setting's value that travels as its template: pickles, copies and ``repr`` hide it.

    >>> import pickle
    >>> password = keep("hunter2")
    >>> password == "hunter2", repr(password), b"hunter2" in pickle.dumps(password)
    (True, "'***'", False)
    >>> pickle.loads(pickle.dumps(password)) == "hunter2"  # resolved again where it lands
    True
    """

    template: str

    def __new__(cls, value: str, template: str) -> Secret:
        made = super().__new__(cls, value)
        made.template = template
        return made

    def __reduce__(self) -> tuple[Any, ...]:
        return (resolve, (self.template,))

    def __repr__(self) -> str:
        return repr(REDACTED)


def is_secret_key(key: str) -> bool:
    """Whether a setting (librdkafka, registry client, delta-rs storage option) holds a secret.

    >>> [is_secret_key(k) for k in ("sasl.password", "ssl.key.pem", "bootstrap.servers")]
    [True, True, False]
    >>> [is_secret_key(k) for k in ("AZURE_STORAGE_ACCOUNT_KEY", "AWS_ACCESS_KEY_ID")]
    [True, False]
    """
    return bool(_SECRET_KEY.search(key))


def has_reference(text: str) -> bool:
    """Whether ``text`` holds a ``${...}`` reference.

    >>> has_reference("${env:KAFKA_PASSWORD}"), has_reference("pa$$word")
    (True, False)
    """
    return any(not m.group(0).startswith("$$") for m in _REFERENCE.finditer(text))


def resolve(template: str) -> str:
    """``template`` with its references replaced by their values: a :class:`Secret` if any.

    Raises:
        SecretUnavailableError: a reference cannot be read here; the message names it.

    >>> os.environ["DOCTEST_PASSWORD"] = "hunter2"
    >>> value = resolve("bob:${env:DOCTEST_PASSWORD}")
    >>> value == "bob:hunter2", value.template
    (True, 'bob:${env:DOCTEST_PASSWORD}')
    >>> resolve("$${env:X} is literal")
    '${env:X} is literal'
    >>> del os.environ["DOCTEST_PASSWORD"]
    """
    if "${" not in template:
        return template
    found = False

    def value(match: re.Match[str]) -> str:
        nonlocal found
        if match.group(0).startswith("$$"):
            return match.group(0)[1:]
        found = True
        return _lookup(match["kind"], match["name"])

    text = _REFERENCE.sub(value, template)
    return Secret(text, template) if found else text


def keep(value: str) -> Secret:
    """``value`` kept in this process; it travels as ``${dataplane-secret:ID}``."""
    ident = _IDS.get(value)
    if ident is None:
        ident = _IDS[value] = f"{_LAUNCH}.{next(_NUMBERS)}"
        _KEPT[ident] = value
    _mark_used(ident)
    return Secret(value, f"${{dataplane-secret:{ident}}}")


def conceal(value: str) -> str:
    """A secret setting's value as a :class:`Secret`: its references, or the value kept here.

    >>> conceal("hunter2").template.startswith("${dataplane-secret:")
    True
    """
    if isinstance(value, Secret):
        return value
    resolved = resolve(value)
    return resolved if isinstance(resolved, Secret) else keep(resolved)


def url_password(url: str) -> str | None:
    """The password in the userinfo of any of the comma-separated ``url``\\s, if one has one.

    >>> url_password("https://bob:hunter2@registry:8081"), url_password("http://h:1")
    ('hunter2', None)
    """
    for one in url.split(","):
        try:
            password = urlsplit(one.strip()).password
        except ValueError:
            continue
        if password:
            return password
    return None


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
        if (is_secret_key(key) or isinstance(value, Secret)) and isinstance(value, str) and value:
            text = text.replace(value, REDACTED)
            password = url_password(value)
            if password:
                text = text.replace(password, REDACTED)
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


class Shipment:
    """The values kept in this process that a pipeline built inside ``with Shipment():`` uses.

    What its workers need to be given, and nothing else this process holds:

    >>> with Shipment() as shipment:
    ...     password = conceal("hunter2")
    >>> list(shipment.values().values())
    ['hunter2']
    """

    def __init__(self) -> None:
        self._used: set[str] = set()

    def __enter__(self) -> Shipment:
        _USED.append(self._used)
        return self

    def __exit__(self, *exc: object) -> None:
        _USED.remove(self._used)

    def values(self) -> dict[str, str]:
        """id -> value of every kept value referenced so far."""
        return {ident: _KEPT[ident] for ident in sorted(self._used) if ident in _KEPT}

    def environment(self) -> dict[str, str]:
        """Environment variables through which local worker processes find the values."""
        return {_env_name(ident): value for ident, value in self.values().items()}

    def write(self, directory: Path) -> Path:
        """The values in a file (mode 0600) to stage with a job; workers find it by its name."""
        path = directory / f"dataplane-secrets-{_LAUNCH}.json"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(self.values(), handle)
        return path


def _mark_used(ident: str) -> None:
    for used in _USED:
        used.add(ident)


def _env_name(ident: str) -> str:
    return _ENV_PREFIX + ident.replace(".", "_")


def _lookup(kind: str, name: str) -> str:
    if kind == "env":
        value = os.environ.get(name)
        if value is None:
            raise SecretUnavailableError(f"${{env:{name}}}", "not set in this environment")
        return value
    if kind == "gcp-secret":
        return _from_secret_manager(name)
    return _shipped(name)


def _from_secret_manager(name: str) -> str:
    reference = f"${{gcp-secret:{name}}}"
    if reference not in _FOUND:
        from apache_beam.utils.secret import GcpSecret

        try:
            _FOUND[reference] = GcpSecret(name).get_str()
        except Exception as err:  # the client's own errors, whatever they are
            raise SecretUnavailableError(
                reference, f"Secret Manager did not give it ({type(err).__name__})"
            ) from None
    return _FOUND[reference]


def _shipped(ident: str) -> str:
    _mark_used(ident)
    if ident in _KEPT:
        return _KEPT[ident]
    value = os.environ.get(_env_name(ident))
    if value is not None:
        return value
    reference = f"${{dataplane-secret:{ident}}}"
    if reference in _FOUND:
        return _FOUND[reference]
    launch = ident.split(".", 1)[0]
    staged = os.environ.get("SEMI_PERSISTENT_DIRECTORY")
    if staged:
        path = Path(staged, _STAGED, f"dataplane-secrets-{launch}.json")
        if path.is_file():
            values = json.loads(path.read_text(encoding="utf-8"))
            _FOUND.update((f"${{dataplane-secret:{i}}}", str(v)) for i, v in values.items())
            if reference in _FOUND:
                return _FOUND[reference]
    raise SecretUnavailableError(
        reference,
        "a value given where the job was launched, not shipped to this process (the launcher "
        "stages it with the job; a runner that does not stage files needs ${env:NAME} or "
        "${gcp-secret:...} references instead)",
    )
