"""A downstream body's Content-Encoding (gzip, deflate) undone within the body size cap.

httpx inflates each chunk it receives in one call with no limit on the output: a
64 KiB chunk of a gzip bomb becomes tens of MiB in memory before anyone can count
it, so a size check after decoding comes too late. Here every zlib call is given
``max_length``, the inflated body arrives in pieces of at most ``PIECE_BYTES``,
and decoding stops with ``BodyTooLarge`` as soon as a stage has produced more than
the cap: what a downstream body inflates to is bounded like a plain body, and at
most the cap (plus one piece) is ever held.

Only the encodings decoded here are advertised (``ACCEPT_ENCODING``). As in
httpx, codings listed in Content-Encoding are undone last-applied first, unknown
ones are ignored (the JSON parse then judges the bytes), and a "deflate" body may
be zlib-wrapped or raw.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator, Sequence

import httpx

ACCEPT_ENCODING = "gzip, deflate"
PIECE_BYTES = 64 * 1024
_WBITS = {"gzip": zlib.MAX_WBITS | 16, "x-gzip": zlib.MAX_WBITS | 16, "deflate": zlib.MAX_WBITS}
_RAW_DEFLATE = -zlib.MAX_WBITS


class BodyTooLarge(Exception):
    """The body, or what it inflates to, is over the cap."""


class _Inflater:
    """One coding undone in bounded pieces."""

    def __init__(self, coding: str, max_bytes: int) -> None:
        self._wbits = _WBITS[coding]
        self._decompressor = zlib.decompressobj(self._wbits)
        self._may_be_raw = coding == "deflate"  # until the first bytes tell: zlib-wrapped or raw
        self._max_bytes = max_bytes
        self._produced = 0

    def pieces(self, data: bytes) -> Iterator[bytes]:
        while data:
            try:
                piece = self._decompressor.decompress(data, PIECE_BYTES)
            except zlib.error as error:
                if not self._may_be_raw:
                    raise httpx.DecodingError(f"{error}") from error
                self._decompressor = zlib.decompressobj(_RAW_DEFLATE)
                piece = self._decompressor.decompress(data, PIECE_BYTES)
            self._may_be_raw = False
            data = self._decompressor.unconsumed_tail
            if piece:
                yield self._counted(piece)
            elif not data:
                return
        # All input taken; output zlib held back for want of room comes with empty input.
        while not self._decompressor.eof:
            piece = self._decompressor.decompress(b"", PIECE_BYTES)
            if not piece:
                return
            yield self._counted(piece)

    def _counted(self, piece: bytes) -> bytes:
        self._produced += len(piece)
        if self._produced > self._max_bytes:
            raise BodyTooLarge(f"body inflates to over {self._max_bytes} bytes")
        return piece


def codings(values: Sequence[str]) -> list[str]:
    """The codings to undo, in order, from the Content-Encoding header values."""
    listed = [token.strip().lower() for value in values for token in value.split(",")]
    return [coding for coding in reversed(listed) if coding in _WBITS]


def decoded(raw: Iterable[bytes], content_encoding: Sequence[str], *, max_bytes: int) -> Iterator[bytes]:
    """The body of ``raw`` chunks with ``content_encoding`` undone, each stage bounded by ``max_bytes``.

    Raises ``BodyTooLarge`` past the cap and ``httpx.DecodingError`` on a corrupt stream."""
    stages = [_Inflater(coding, max_bytes) for coding in codings(content_encoding)]
    received = 0
    for chunk in raw:
        received += len(chunk)
        if received > max_bytes:
            raise BodyTooLarge(f"body over {max_bytes} bytes")
        yield from _through(stages, chunk)


def _through(stages: list[_Inflater], data: bytes) -> Iterator[bytes]:
    if not stages:
        if data:
            yield data
        return
    first, rest = stages[0], stages[1:]
    for piece in first.pieces(data):
        yield from _through(rest, piece)
