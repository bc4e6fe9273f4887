"""A/B for bench/micro.py --ab: B = the access line written directly (access_log._write_direct),
A = the same line through logging (LogRecord, filter, JsonFormatter, StreamHandler)."""

from orchestration.observability import access_log

_stock_handler = access_log._stock_handler


def toggle(on: bool) -> None:
    access_log._stock_handler = _stock_handler if on else (lambda: None)  # type: ignore[assignment]
