"""The access line written directly (without logging's record machinery) is the line logging writes."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest
from django.conf import settings
from pythonjsonlogger.json import JsonFormatter

from orchestration.observability import access_log

FMT = settings.LOGGING["formatters"]["json"]["fmt"]  # the stock format, whatever it names


@pytest.fixture
def stock_root() -> Iterator[io.StringIO]:
    """The root logger set up as settings.LOGGING does, writing to a buffer (``_stock``
    installs it inside the test: pytest adds its capture handlers per test phase)."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    access_log.bind(request_id="req-7", trace_id="ab" * 16)
    try:
        yield io.StringIO()
    finally:
        access_log.unbind()
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


def _stock(stream: io.StringIO) -> logging.Handler:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(fmt=FMT))
    handler.addFilter(access_log.RequestContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    return handler


def _write(path: str = "/v1/caf\u00e9", status: int = 502) -> None:
    record = access_log.RequestRecord(endpoint="checkout", failed_services=("tax",), partial=True)
    access_log.write_access_line(method="POST", path=path, status=status, duration_s=0.012345, record=record)


def test_direct_line_is_the_line_logging_writes(stock_root: io.StringIO, monkeypatch: pytest.MonkeyPatch) -> None:
    _stock(stock_root)
    assert access_log._stock_handler() is not None  # the stock set-up takes the direct way
    _write()
    direct = stock_root.getvalue()
    stock_root.seek(0)
    stock_root.truncate()
    monkeypatch.setattr(access_log, "_stock_handler", lambda: None)  # through logging, as before
    _write()
    through_logging = stock_root.getvalue()

    def without_time(line: str) -> str:
        return re.sub(r'"asctime": "[^"]*"', '"asctime": ""', line)

    assert without_time(direct) == without_time(through_logging)  # same bytes: keys, order, escapes
    assert re.match(r'\{"asctime": "\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"', direct)
    line = json.loads(direct)
    assert line["message"] == "POST /v1/caf\u00e9 502"
    assert (line["request_id"], line["trace_id"], line["failed_services"]) == ("req-7", "ab" * 16, ["tax"])
    assert line["duration_ms"] == 12.35 and direct.endswith("}\n") and "\\u00e9" in direct


def test_any_other_set_up_goes_through_logging(stock_root: io.StringIO, caplog: pytest.LogCaptureFixture) -> None:
    _stock(stock_root)
    logging.getLogger().addHandler(caplog.handler)  # a second handler on the way: a capture, another sink
    with caplog.at_level(logging.INFO, logger="gateway.access"):
        assert access_log._stock_handler() is None
        _write(status=200)
    assert [record.getMessage() for record in caplog.records] == ["POST /v1/caf\u00e9 200"]
    assert caplog.records[0].endpoint == "checkout"  # type: ignore[attr-defined]
    assert json.loads(stock_root.getvalue())["status"] == 200


def test_level_above_info_writes_nothing(stock_root: io.StringIO) -> None:
    _stock(stock_root)
    logging.getLogger().setLevel(logging.WARNING)
    _write()
    assert stock_root.getvalue() == ""
