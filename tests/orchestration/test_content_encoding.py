"""Compressed downstream bodies are inflated in bounded pieces, within the body size cap."""

from __future__ import annotations

import gzip
import json
import zlib

import httpx
import pytest

from orchestration.clock import FakeClock
from orchestration.downstream import DownstreamPool, RequestSpec
from orchestration.downstream.content_encoding import PIECE_BYTES, BodyTooLarge, decoded
from orchestration.outcome import OutcomeKind
from orchestration.plan import Service

BODY = json.dumps({"items": list(range(50_000))}).encode()
BOMB = gzip.compress(b"\0" * (10 * 1024 * 1024), 9)  # 10 MiB of zeros in about 10 KiB
CAP = 8 * 1024 * 1024


def _chunks(data: bytes, size: int = 64 * 1024) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def _raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(
    ("header", "encoded"),
    [
        ("gzip", gzip.compress(BODY)),
        ("deflate", zlib.compress(BODY)),
        ("deflate", _raw_deflate(BODY)),
        ("deflate, gzip", gzip.compress(zlib.compress(BODY))),  # undone last-applied first
        ("identity", BODY),
        ("br", BODY),  # not ours: passed on as is, as httpx does
    ],
)
def test_each_coding_is_undone(header: str, encoded: bytes) -> None:
    assert b"".join(decoded(_chunks(encoded, 1000), [header], max_bytes=CAP)) == BODY


def test_a_gzip_bomb_stops_at_the_cap_in_bounded_pieces() -> None:
    assert len(BOMB) < 64 * 1024  # one network chunk: httpx would inflate all 10 MiB at once
    pieces: list[int] = []
    with pytest.raises(BodyTooLarge, match="inflates to over 8388608 bytes"):
        for piece in decoded(_chunks(BOMB), ["gzip"], max_bytes=CAP):
            pieces.append(len(piece))
    assert max(pieces) <= PIECE_BYTES
    assert sum(pieces) <= CAP


def test_a_body_exactly_at_the_cap_passes_and_one_byte_more_does_not() -> None:
    encoded = gzip.compress(b"x" * 1000)
    assert len(b"".join(decoded([encoded], ["gzip"], max_bytes=1000))) == 1000
    with pytest.raises(BodyTooLarge):
        b"".join(decoded([encoded], ["gzip"], max_bytes=999))


def test_a_corrupt_stream_is_a_decoding_error() -> None:
    with pytest.raises(httpx.DecodingError):
        list(decoded([b"this is not gzip"], ["gzip"], max_bytes=CAP))


def _attempt(content: bytes, encoding: str, max_body_bytes: int = CAP):  # type: ignore[no-untyped-def]
    headers = {"Content-Type": "application/json", "Content-Encoding": encoding}
    transport = httpx.MockTransport(lambda request: httpx.Response(200, headers=headers, content=content))
    pool = DownstreamPool(
        {"cart": Service("cart", "http://cart.test")},
        lambda _: transport,
        clock=FakeClock(),
        environ={},
        max_body_bytes=max_body_bytes,
    )
    return pool.client("cart").attempt(RequestSpec(method="GET", path="/c"), 1.0)


def test_the_client_turns_a_bomb_into_a_bad_body() -> None:
    outcome = _attempt(BOMB, "gzip")
    assert (outcome.kind, outcome.detail) == (OutcomeKind.BAD_BODY, "body inflates to over 8388608 bytes")
    assert outcome.is_breaker_failure


def test_the_client_reads_a_compressed_body_under_the_cap() -> None:
    outcome = _attempt(gzip.compress(BODY), "gzip")
    assert outcome.kind is OutcomeKind.OK and outcome.body == json.loads(BODY)


def test_the_client_asks_only_for_codings_it_bounds() -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["accept-encoding"])
        return httpx.Response(200, json={})

    pool = DownstreamPool(
        {"cart": Service("cart", "http://cart.test")},
        lambda _: httpx.MockTransport(answer),
        clock=FakeClock(),
        environ={},
    )
    pool.client("cart").attempt(RequestSpec(method="GET", path="/c"), 1.0)
    assert seen == ["gzip, deflate"]
