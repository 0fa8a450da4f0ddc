"""Reading the WebAssembly binary encoding: LEB128 integers, fixed-width words, names.

Functions take the module's bytes and a position and return ``(value,
new_position)``; they read from the whole module, as the reference
interpreter does (a section's declared size is checked after its contents are
decoded, which is what makes "section size mismatch" distinguishable from
"unexpected end").  Running off the end of the module raises ``IndexError``
inside the hot paths; :func:`eof` builds the error the decoder turns it into.

The LEB128 rules, for an N-bit integer: at most ceil(N/7) bytes ("integer
representation too long"), and the unused high bits of the last byte must be
zero (unsigned) or copies of the sign bit (signed) ("integer too large").
"""

from __future__ import annotations

from .errors import MalformedError

UNEXPECTED_END = "unexpected end of section or function"


def eof(length: int, what: str | None = None) -> MalformedError:
    """The error for reading past the end of a module of ``length`` bytes."""
    reason = UNEXPECTED_END
    if what:
        reason += f" (reading {what})"
    return MalformedError(reason, offset=length)


def write_uleb(n: int) -> bytes:
    """``n`` (>= 0) as unsigned LEB128."""
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def read_uleb(data, pos: int, bits: int) -> tuple[int, int]:
    """An unsigned ``bits``-bit LEB128 integer at ``pos``."""
    b = data[pos]
    if b < 0x80:
        return b, pos + 1
    result = 0
    shift = 0
    n = bits
    while True:
        if n <= 0:
            raise MalformedError("integer representation too long", offset=pos)
        b = data[pos]
        if n < 7 and (b & 0x7F) >= (1 << n):
            raise MalformedError("integer too large", offset=pos)
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        n -= 7


def read_sleb(data, pos: int, bits: int) -> tuple[int, int]:
    """A signed ``bits``-bit LEB128 integer at ``pos``, as a Python int (negative when negative)."""
    b = data[pos]
    if b < 0x80:
        return (b - 0x80 if b & 0x40 else b), pos + 1
    result = 0
    shift = 0
    n = bits
    while True:
        if n <= 0:
            raise MalformedError("integer representation too long", offset=pos)
        b = data[pos]
        if n < 7:
            mask = (-1 << (n - 1)) & 0x7F
            if (b & mask) != 0 and (b & mask) != mask:
                raise MalformedError("integer too large", offset=pos)
        pos += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            if b & 0x40:
                result -= 1 << shift
            return result, pos
        n -= 7


def read_u32(data, pos: int) -> tuple[int, int]:
    b = data[pos]
    if b < 0x80:
        return b, pos + 1
    return read_uleb(data, pos, 32)


def read_u64(data, pos: int) -> tuple[int, int]:
    return read_uleb(data, pos, 64)


def read_len(data, pos: int) -> tuple[int, int]:
    """A u32 length or count that must not exceed the bytes left in the module ("length out of bounds")."""
    n, new = read_u32(data, pos)
    # Compared with the bytes left from the start of the length field, as the
    # reference interpreter does.
    if n > len(data) - pos:
        raise MalformedError(f"length out of bounds: {n} but only {len(data) - pos} bytes remain", offset=pos)
    return n, new


def read_bytes(data, pos: int, n: int) -> tuple[bytes, int]:
    end = pos + n
    if n < 0 or end > len(data):
        raise eof(len(data))
    return bytes(data[pos:end]), end


def read_name(data, pos: int) -> tuple[str, int]:
    """A length-prefixed UTF-8 name ("malformed UTF-8 encoding" when it is not well-formed UTF-8)."""
    n, start = read_len(data, pos)
    raw, end = read_bytes(data, start, n)
    try:
        return raw.decode("utf-8"), end
    except UnicodeDecodeError as exc:
        raise MalformedError(
            f"malformed UTF-8 encoding: {exc.reason} at byte {exc.start} of the name", offset=pos
        ) from None
