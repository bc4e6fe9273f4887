"""A/B for bench/micro.py --ab: B = the lean lane (bench/ab/api_lane_variant.py) in front of
Django's handler, A = Django's handler alone.."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from api_lane_variant import ApiLane  # bench/ab/api_lane_variant.py

import gateway_project.wsgi as wsgi

_lane = wsgi.application if isinstance(wsgi.application, ApiLane) else ApiLane(wsgi.application)
_django = _lane._django


def toggle(on: bool) -> None:
    wsgi.application = _lane if on else _django  # type: ignore[assignment]
