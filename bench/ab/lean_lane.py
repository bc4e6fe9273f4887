"""A/B for bench/micro.py --ab (and bench/call_path.py --ab): B = the downstream calls through
the lean lane (head bytes built from a per-(method, target, header names) cache, answers
read without httpx objects: ``client.LEAN_LANE``), A = every call through httpx.Request /
``handle_request`` / httpx.Response as before."""

from orchestration.downstream import client


def toggle(on: bool) -> None:
    client.LEAN_LANE = on
