"""The Confluent wire format: magic byte ``0``, a 4-byte big-endian schema id, the payload.

Every Confluent serializer (Java, Go, Python) frames values this way, so a
consumer learns the writer's schema from the first five bytes of each message.
"""

from __future__ import annotations

import struct

from schemas.errors import DataplaneError

__all__ = ["HEADER_SIZE", "MAGIC_BYTE", "FramingError", "frame", "is_framed", "unframe"]

MAGIC_BYTE = 0
HEADER_SIZE = 5
_HEADER = struct.Struct(">bI")


class FramingError(DataplaneError, ValueError):
    """A value is not a well-formed Confluent frame.

    Attributes:
        reason: ``"BadMagicByte"`` or ``"TruncatedPayload"``, the dead-letter reason.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def frame(schema_id: int, payload: bytes) -> bytes:
    """Prefixes ``payload`` with the magic byte and ``schema_id``.

    >>> frame(7, b"abc")
    b'\\x00\\x00\\x00\\x00\\x07abc'
    """
    if not 0 <= schema_id <= 0xFFFFFFFF:
        raise ValueError(f"schema id {schema_id} does not fit in 4 unsigned bytes")
    return _HEADER.pack(MAGIC_BYTE, schema_id) + payload


def is_framed(value: bytes) -> bool:
    """Whether ``value`` starts like a Confluent frame (magic byte 0).

    No JSON text starts with a NUL byte, so this tells framed values from plain JSON.

    >>> is_framed(b"\\x00\\x00\\x00\\x00\\x07abc"), is_framed(b'{"a": 1}')
    (True, False)
    """
    return bool(value) and value[0] == MAGIC_BYTE


def unframe(value: bytes) -> tuple[int, memoryview]:
    """Splits a framed value into ``(schema_id, payload)`` without copying the payload.

    Raises:
        FramingError: with reason ``BadMagicByte`` when the first byte is not 0, or
            ``TruncatedPayload`` when the value is shorter than the 5-byte header or
            has no payload after it.

    >>> schema_id, payload = unframe(frame(7, b"abc"))
    >>> schema_id, bytes(payload)
    (7, b'abc')
    >>> unframe(b"\\x01abcde")
    Traceback (most recent call last):
    ...
    schemas.wire.FramingError: expected magic byte 0, got 0x01
    """
    if not value:
        raise FramingError("TruncatedPayload", "the value is empty; expected a 5-byte header")
    if value[0] != MAGIC_BYTE:
        raise FramingError("BadMagicByte", f"expected magic byte 0, got 0x{value[0]:02x}")
    if len(value) < HEADER_SIZE:
        raise FramingError(
            "TruncatedPayload",
            f"the value has {len(value)} bytes, shorter than the 5-byte header",
        )
    if len(value) == HEADER_SIZE:
        raise FramingError("TruncatedPayload", "the value has a header but no payload")
    _, schema_id = _HEADER.unpack_from(value)
    return schema_id, memoryview(value)[HEADER_SIZE:]
