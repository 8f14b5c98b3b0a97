"""A well-formedness and size check of CBOR bytes from others, before any decoder builds
Python objects from them: :func:`check_cbor`.

cbor2 reads declared lengths safely (it reads in chunks, so a byte string claiming 2**60 bytes
fails at the end of the input), but it builds whatever the bytes hold: a 64 MiB payload of
one-byte items becomes 64 million Python objects, and 100,000 nested arrays a RecursionError.
:func:`check_cbor` walks the items without building anything and refuses more depth than
:data:`MAX_DEPTH` or more items than :data:`MAX_ITEMS`; the UCP message decoder
(:mod:`ucp_dtn.ucp._wire`) and the application API's frames (:mod:`ucp_dtn.appapi.framing`) run
it first.

Only the standard library: light enough for every process.
"""

from __future__ import annotations

__all__ = ["MAX_DEPTH", "MAX_ITEMS", "CBORCheckError", "check_cbor"]


class CBORCheckError(ValueError):
    """The bytes are not one well-formed CBOR item within the bounds (one-line message)."""


MAX_DEPTH = 32
"""Deepest nesting of CBOR arrays, maps and tags a message may have."""
MAX_ITEMS = 1 << 20
"""Most CBOR data items (strings, numbers, array and map heads...) one message may have. Each
becomes a Python object of 30 to 100 bytes, so without a bound a 64 MiB payload of one-byte
items would take gigabytes to decode; no message of ours comes near (a status reply of 10,000
jobs has about 300,000)."""


def check_cbor(data: bytes) -> None:
    """Check that ``data`` is exactly one well-formed CBOR item (RFC 8949 §5.3.1) of bounded
    depth (:data:`MAX_DEPTH`) and size (:data:`MAX_ITEMS`); cheap, allocates nothing
    proportional to declared lengths."""
    end = len(data)
    pos = 0
    # Items still expected per open container; None: indefinite length, closed by a break.
    stack: list[int | None] = []
    items = 0
    while True:
        if pos >= end:
            raise CBORCheckError("truncated CBOR")
        items += 1
        if items > MAX_ITEMS:
            raise CBORCheckError(f"more than {MAX_ITEMS} CBOR items")
        initial = data[pos]
        major, info = initial >> 5, initial & 0x1F
        pos += 1
        if initial == 0xFF:  # break: closes the innermost indefinite-length container
            if not stack or stack[-1] is not None:
                raise CBORCheckError("CBOR break outside an indefinite-length item")
            stack.pop()
        else:
            if info < 24:
                argument = info
            elif info <= 27:
                size = 1 << (info - 24)
                if pos + size > end:
                    raise CBORCheckError("truncated CBOR")
                argument = int.from_bytes(data[pos : pos + size], "big")
                pos += size
            elif info == 31 and major in (2, 3, 4, 5):
                argument = -1
            else:
                raise CBORCheckError(f"malformed CBOR initial byte 0x{initial:02x}")
            if major in (2, 3):
                if argument >= 0:
                    if pos + argument > end:
                        raise CBORCheckError("truncated CBOR string")
                    pos += argument
                else:  # indefinite string: definite chunks of the same major type, then break
                    while True:
                        if pos >= end:
                            raise CBORCheckError("truncated CBOR")
                        chunk = data[pos]
                        pos += 1
                        if chunk == 0xFF:
                            break
                        if chunk >> 5 != major or chunk & 0x1F > 27:
                            raise CBORCheckError("malformed indefinite-length CBOR string")
                        chunk_info = chunk & 0x1F
                        length = chunk_info
                        if chunk_info >= 24:
                            size = 1 << (chunk_info - 24)
                            if pos + size > end:
                                raise CBORCheckError("truncated CBOR")
                            length = int.from_bytes(data[pos : pos + size], "big")
                            pos += size
                        if pos + length > end:
                            raise CBORCheckError("truncated CBOR string")
                        pos += length
            elif major in (4, 5, 6):
                count = 1 if major == 6 else argument * (2 if major == 5 else 1)
                if argument < 0 or count > 0:  # a container opens; its items come next
                    stack.append(None if argument < 0 else count)
                    if len(stack) > MAX_DEPTH:
                        raise CBORCheckError(f"CBOR nested deeper than {MAX_DEPTH}")
                    continue
            elif major == 7 and info == 24 and argument < 32:
                # RFC 8949 §3.3: simple values 0..31 in the two-byte form are not well-formed.
                raise CBORCheckError("malformed CBOR simple value")
        _complete(stack)
        if not stack:
            break
    if pos != end:
        raise CBORCheckError(f"{end - pos} bytes after the CBOR item")


def _complete(stack: list[int | None]) -> None:
    """One item finished: count it against the open containers, closing those it fills."""
    while stack and stack[-1] is not None:
        remaining = stack[-1] - 1
        if remaining:
            stack[-1] = remaining
            return
        stack.pop()
