"""A/B for bench/micro.py --ab: both sides serve the checkout with every issue-14 feature
(``bench/ab/resilience_features.py``'s B); B = a service's calls tallied by its ``BudgetGrant``
and handed to the retry-budget store once per tick, A = one store call per call (``on_call``,
the way before).

    python bench/micro.py --ab bench/ab/budget_tally.py -n 6000 -c 4 --blocks 24 [--redis URL]
"""

from __future__ import annotations

from resilience_config import ALL, with_features  # bench/resilience_config.py

from gateway_project import wiring
from orchestration.resilience.retry_budget import BudgetGrant
from orchestration.web import aggregate
from orchestration.web.runtime import LoadedConfig
from registry import selectors
from registry.config.plan import plan_from_document

_plan = plan_from_document(with_features(selectors.config_document_get(), ALL), version="B")
_runtime = wiring._build_runtime(LoadedConfig(plan=_plan, api_keys=selectors.api_key_subjects_active()))
aggregate.install_runtime_source(lambda: _runtime)
_tallied = BudgetGrant.count_call


def _per_call(self: BudgetGrant) -> None:
    self._store.on_call(self._service, self._wall())


def toggle(on: bool) -> None:
    BudgetGrant.count_call = _tallied if on else _per_call  # type: ignore[method-assign]
