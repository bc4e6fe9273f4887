"""A/B for bench/micro.py --ab: B = the lean lane for aggregate routes
(``gateway_project.api_lane``, what ``gateway_project.wsgi.application`` is), A = Django's
handler alone (what it was before round 12)."""

import gateway_project.wsgi as wsgi
from gateway_project.api_lane import ApiLane

_lane = wsgi.application
assert isinstance(_lane, ApiLane)
_django = _lane._django


def toggle(on: bool) -> None:
    wsgi.application = _lane if on else _django  # type: ignore[assignment]
