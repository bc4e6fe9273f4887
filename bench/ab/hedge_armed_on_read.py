"""A/B for bench/micro.py --ab: both sides serve the checkout with every issue-14 feature
(``bench/ab/resilience_features.py``'s B); B = hedged first attempts armed by the transport's
own read (``Hedged.arms_on_read``: no timer for a call answered in time), A = a timer armed
before every hedged attempt and closed when it answers (the way before).

    python bench/micro.py --ab bench/ab/hedge_armed_on_read.py -n 6000 -c 4 --blocks 24
"""

from __future__ import annotations

from resilience_config import ALL, with_features  # bench/resilience_config.py

from gateway_project import wiring
from orchestration.web import aggregate
from orchestration.web.runtime import LoadedConfig
from registry import selectors
from registry.config.plan import plan_from_document

_plan = plan_from_document(with_features(selectors.config_document_get(), ALL), version="B")
_runtime = wiring._build_runtime(LoadedConfig(plan=_plan, api_keys=selectors.api_key_subjects_active()))
aggregate.install_runtime_source(lambda: _runtime)


def toggle(on: bool) -> None:
    # the steps (and their ``Hedged``) are made on an endpoint's first request: micro.py's
    # warm-up after the first toggle(True) makes them with the transport's own setting (on)
    for step in _runtime.executor._steps.values():
        if step.hedged is not None:
            step.hedged.arms_on_read = on
