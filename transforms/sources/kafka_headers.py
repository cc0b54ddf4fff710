"""A Kafka message's headers, read without letting a header name crash the reader.

confluent-kafka's ``Message.headers()`` turns each header name into a ``str`` in
C and does not handle a name that is not UTF-8: it raises (``UnicodeDecodeError``
or ``SystemError``), or crashes the process on a tuple with a missing item. Any
producer can write such a name (the protocol says UTF-8; only clients check), and
a crash repeats at the same offset on every restart.

So the reader looks at the raw headers first, with librdkafka's own accessors
(``rd_kafka_header_cnt``, ``rd_kafka_header_get_all``) on the message's C header
list, and builds the headers itself. A name that is not UTF-8 is kept as
``dataplane.unreadable_header:<hex of the name>`` with its value as produced; the
decoder turns such a record into an ``UnreadableHeaders`` dead letter.

Where the C header list is reached is checked once per process against the
message's topic, value and key objects (the layout of confluent-kafka's
``Message``). Should a confluent-kafka release change it, the reader falls back to
``headers()``, guarded, and logs that a bad name can then crash it.
"""

from __future__ import annotations

import ctypes
import glob
import logging
import os
from typing import Any

import confluent_kafka

from transforms.record import UNREADABLE_HEADER_PREFIX, Header, unreadable_headers

__all__ = ["headers_of", "raw_headers_readable"]

_LOG = logging.getLogger(__name__)
_WORD = ctypes.sizeof(ctypes.c_void_p)
# confluent-kafka's Message: PyObject_HEAD, then topic, value, key, headers, c_headers.
_TOPIC, _VALUE, _KEY, _HEADERS, _C_HEADERS = (2 * _WORD + i * _WORD for i in range(5))


class _Librdkafka:
    """The two librdkafka header accessors, from the library confluent-kafka loaded."""

    def __init__(self) -> None:
        package = os.path.dirname(confluent_kafka.__file__)
        found = sorted(glob.glob(f"{package}.libs/librdkafka*.so*"))
        lib = ctypes.CDLL(found[0]) if found else ctypes.CDLL("librdkafka.so.1")
        self.count = lib.rd_kafka_header_cnt
        self.count.restype = ctypes.c_size_t
        self.count.argtypes = [ctypes.c_void_p]
        self.get_all = lib.rd_kafka_header_get_all
        self.get_all.restype = ctypes.c_int
        self.get_all.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.POINTER(ctypes.c_char_p),
            ctypes.POINTER(ctypes.c_void_p),
            ctypes.POINTER(ctypes.c_size_t),
        ]


_lib: _Librdkafka | None = None
_layout_ok: bool | None = None


def _word_at(message: Any, offset: int) -> int | None:
    return ctypes.c_void_p.from_address(id(message) + offset).value


def _check_layout(message: Any) -> bool:
    """Whether ``message``'s topic, value and key sit where this module expects them."""
    expected = {_TOPIC: message.topic(), _VALUE: message.value(), _KEY: message.key()}
    checked = 0
    for offset, obj in expected.items():
        if obj is None:
            continue
        if _word_at(message, offset) != id(obj):
            return False
        checked += 1
    return checked > 0


def raw_headers_readable(message: Any) -> bool:
    """Whether headers are read from librdkafka directly (else via guarded ``headers()``)."""
    global _lib, _layout_ok
    if _layout_ok is None:
        if message.topic() is None:
            return False  # cannot tell yet
        try:
            _layout_ok = _check_layout(message)
            if _layout_ok:
                _lib = _Librdkafka()
        except (OSError, AttributeError) as err:
            _LOG.warning("cannot load librdkafka's header accessors: %s", err)
            _layout_ok = False
        if not _layout_ok:
            _LOG.warning(
                "confluent-kafka %s: unknown Message layout; header names that are "
                "not UTF-8 may crash the reader",
                confluent_kafka.version()[0],
            )
    return bool(_layout_ok)


def headers_of(message: Any) -> list[Header]:
    """The headers of a consumed message; names that are not UTF-8 kept as marked headers."""
    if not raw_headers_readable(message):
        try:
            return [Header(name, value) for name, value in message.headers() or ()]
        except Exception as err:
            return unreadable_headers(err)
    if _word_at(message, _HEADERS) is not None:  # headers() was called: its list is cached
        return [Header(name, value) for name, value in message.headers() or ()]
    c_headers = _word_at(message, _C_HEADERS)
    if c_headers is None:
        return []
    assert _lib is not None
    headers = []
    name, value, size = ctypes.c_char_p(), ctypes.c_void_p(), ctypes.c_size_t()
    for index in range(_lib.count(c_headers)):
        if _lib.get_all(
            c_headers, index, ctypes.byref(name), ctypes.byref(value), ctypes.byref(size)
        ):
            break
        raw_name = name.value or b""
        raw_value = ctypes.string_at(value.value, size.value) if value.value else None
        try:
            headers.append(Header(raw_name.decode("utf-8"), raw_value))
        except UnicodeDecodeError:
            headers.append(Header(UNREADABLE_HEADER_PREFIX + raw_name.hex(), raw_value))
    return headers
