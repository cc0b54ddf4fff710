"""Object-store access for our writers: one set of storage options for Delta and Parquet.

The options are delta-rs's (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ...; keys
are case-insensitive); :func:`arrow_filesystem` maps the same options onto a
pyarrow filesystem, so one ``--storage_option`` flag serves both writers. Values
not given fall back to the standard environment variables at call time.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from urllib.parse import urlparse

import pyarrow.fs as pafs

from schemas.errors import ConfigError

__all__ = ["arrow_filesystem", "check_output_location", "normalised_options"]

_TRUE = {"1", "true", "yes", "on"}
# What delta-rs leaves in a table's directory before its first commit lands (a crash
# in between): data files, half-written ones (object_store stages a local upload as
# ``NAME#N``), and partition directories (``column=value``).
_DELTA_DATA = re.compile(r"part-\d+-[0-9a-f-]+-c\d+(\.[a-z0-9]+)*\.parquet(#\d+)?")


def normalised_options(options: Mapping[str, str] | None) -> dict[str, str]:
    """Storage options with upper-case keys.

    >>> normalised_options({"aws_region": "eu-west-1"})
    {'AWS_REGION': 'eu-west-1'}
    """
    return {key.upper(): str(value) for key, value in (options or {}).items()}


def arrow_filesystem(
    uri: str, storage_options: Mapping[str, str] | None = None
) -> tuple[pafs.FileSystem, str]:
    """A pyarrow filesystem and the path inside it for a local path, ``s3://`` or ``gs://`` URI.

    >>> fs, path = arrow_filesystem("/tmp/lake/readings")
    >>> type(fs).__name__, path
    ('LocalFileSystem', '/tmp/lake/readings')
    >>> arrow_filesystem("hdfs://x/y")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    schemas.errors.ConfigError: uri: unsupported scheme 'hdfs' in 'hdfs://x/y'; expected ...
    """
    parsed = urlparse(uri)
    options = normalised_options(storage_options)
    if parsed.scheme in ("", "file"):
        return pafs.LocalFileSystem(), os.path.abspath(parsed.path if parsed.scheme else uri)
    path = f"{parsed.netloc}{parsed.path}".rstrip("/")
    if parsed.scheme in ("s3", "s3a"):
        return _s3(options), path
    if parsed.scheme == "gs":
        return _gcs(options), path
    raise ConfigError(
        "uri",
        f"unsupported scheme {parsed.scheme!r} in {uri!r}; expected a local path, s3:// or gs://",
    )


def _option(options: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = options.get(name) or os.environ.get(name)
        if value:
            return value
    return None


def _s3(options: Mapping[str, str]) -> pafs.S3FileSystem:
    endpoint = _option(options, "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT")
    region = _option(options, "AWS_REGION", "AWS_DEFAULT_REGION")
    return pafs.S3FileSystem(
        access_key=_option(options, "AWS_ACCESS_KEY_ID"),
        secret_key=_option(options, "AWS_SECRET_ACCESS_KEY"),
        session_token=_option(options, "AWS_SESSION_TOKEN"),
        region=region or "us-east-1",
        endpoint_override=endpoint,
        allow_bucket_creation=False,
    )


def _gcs(options: Mapping[str, str]) -> pafs.GcsFileSystem:
    endpoint = _option(options, "GOOGLE_ENDPOINT_URL", "STORAGE_EMULATOR_HOST")
    if endpoint is None:
        anonymous = (_option(options, "GOOGLE_ANONYMOUS") or "").lower() in _TRUE
        return pafs.GcsFileSystem(anonymous=anonymous)
    parsed = urlparse(endpoint if "://" in endpoint else f"http://{endpoint}")
    return pafs.GcsFileSystem(
        anonymous=True, endpoint_override=parsed.netloc, scheme=parsed.scheme or "http"
    )


def check_output_location(uri: str, *, delta: bool) -> None:
    """Raises ConfigError when a local output cannot be written where ``uri`` says.

    A local path (or ``file://``) must be a directory, or be creatable: its
    nearest existing ancestor a directory this process can write in. With
    ``delta``, an existing directory must be empty or a Delta table (it has a
    ``_delta_log``), or hold only what delta-rs writes before a table's first
    commit; a directory of other files is refused, not made a table beside them.
    Object-store URIs are not checked here (their first write is).

    >>> check_output_location("s3://bucket/lake/t", delta=True)
    >>> check_output_location("/etc/hostname/t", delta=True)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    schemas.errors.ConfigError: uri: cannot create /etc/hostname/t: /etc/hostname is a file...
    """
    parsed = urlparse(uri)
    if parsed.scheme not in ("", "file"):
        return
    path = os.path.abspath(os.path.expanduser(parsed.path if parsed.scheme else uri))
    existing = path
    while not os.path.lexists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        if existing == path:
            raise ConfigError("uri", f"{path} is a file, not a directory")
        raise ConfigError("uri", f"cannot create {path}: {existing} is a file, not a directory")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        where = "" if existing == path else f"cannot create {path}: "
        raise ConfigError(
            "uri", f"{where}{existing} is not writable ({err.strerror or err})"
        ) from None
    if delta and existing == path:
        _check_delta_directory(path)


def _check_delta_directory(path: str) -> None:
    try:
        entries = sorted(os.listdir(path))
    except OSError as err:
        raise ConfigError("uri", f"cannot list {path} ({err.strerror or err})") from None
    if "_delta_log" in entries:
        return
    foreign = [
        entry
        for entry in entries
        if not _DELTA_DATA.fullmatch(entry)
        and not ("=" in entry and os.path.isdir(os.path.join(path, entry)))
    ]
    if foreign:
        raise ConfigError(
            "uri",
            f"{path} exists and is not a Delta table (no _delta_log; it holds {len(entries)} "
            f"entries, e.g. {foreign[0]!r}); give an empty or new directory, or a Delta table",
        )
