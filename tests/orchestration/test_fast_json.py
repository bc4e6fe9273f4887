"""orjson on the hot path gives the standard library's answers (orchestration.fast_json)."""

from __future__ import annotations

import json

import pytest

from orchestration import fast_json
from orchestration.downstream.client import _parsed
from orchestration.errors import BadRequest
from orchestration.outcome import OutcomeKind
from orchestration.web.client_request import json_body


def test_big_integers_keep_every_digit() -> None:
    # orjson alone reads an integer beyond 64 bits as a float: the digits would be lost.
    raw = b'{"id": 123456789012345678901234567890, "n": 18446744073709551616}'
    assert json_body(raw, max_depth=32) == {"id": 123456789012345678901234567890, "n": 18446744073709551616}
    assert _parsed(200, raw).body == {"id": 123456789012345678901234567890, "n": 18446744073709551616}
    assert fast_json.dumps({"id": 2**100}) == b'{"id":1267650600228229401496703205376}'


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'\xef\xbb\xbf{"a": 1}', {"a": 1}),  # a UTF-8 BOM, as the standard library read it
        (b'{"a": 1, "a": 2}', {"a": 2}),
        (b'{"s": "\\u00e9\xc3\xa9", "f": [1.5e-7, -0.0, 1E2]}', {"s": "éé", "f": [1.5e-7, -0.0, 100.0]}),
    ],
)
def test_client_bodies_read_as_before(raw: bytes, expected: object) -> None:
    assert json_body(raw, max_depth=32) == expected


@pytest.mark.parametrize("raw", [b'{"a": NaN}', b"[Infinity]", b'{"a": "\\ud800"}', b'{"a": 1', b"\xff"])
def test_client_bodies_refused_as_before(raw: bytes) -> None:
    with pytest.raises(BadRequest):
        json_body(raw, max_depth=32)


def test_downstream_utf16_body_and_refusals_as_before() -> None:
    assert _parsed(200, '{"a": "é"}'.encode("utf-16")).body == {"a": "é"}
    outcome = _parsed(200, b'{"a": NaN}')
    assert outcome.kind is OutcomeKind.BAD_BODY and "NaN is not JSON" in (outcome.detail or "")


@pytest.mark.parametrize(
    "value",
    [{"a": [1, 2.5, True, None, 'é\u2028\x1f"\\']}, [], "text", {"nested": {"x": [{"y": 1}]}}],
)
def test_written_as_the_standard_library_writes_it(value: object) -> None:
    expected = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    assert fast_json.dumps(value) == expected


def test_values_orjson_refuses_are_written_or_refused_by_the_standard_library() -> None:
    assert fast_json.dumps({1: "a"}) == b'{"1":"a"}'  # a non-string key, as json writes it
    with pytest.raises(UnicodeEncodeError):
        fast_json.dumps({"a": "\ud800"})  # an unpaired surrogate cannot be UTF-8
