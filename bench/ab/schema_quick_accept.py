"""A/B for bench/micro.py --ab: both sides serve the checkout with every issue-14 feature
(``bench/ab/resilience_features.py``'s B); B = the response contract's quick acceptance by
jsonschema-rs (``ResponseContract.accepts``), A = fastjsonschema's generated code alone
(the way before).

    python bench/micro.py --ab bench/ab/schema_quick_accept.py -n 6000 -c 4 --blocks 24
"""

from __future__ import annotations

from resilience_config import ALL, CHECKOUT, with_features  # bench/resilience_config.py

from gateway_project import wiring
from orchestration.web import aggregate
from orchestration.web.runtime import LoadedConfig
from registry import selectors
from registry.config.plan import plan_from_document

_plan = plan_from_document(with_features(selectors.config_document_get(), ALL), version="B")
_runtime = wiring._build_runtime(LoadedConfig(plan=_plan, api_keys=selectors.api_key_subjects_active()))
aggregate.install_runtime_source(lambda: _runtime)
_contract = next(ep for ep in _plan.endpoints if ep.name == CHECKOUT).response_contract
_accepts = _contract.accepts
assert _accepts is not None, "the checkout's schema should take the quick acceptance"


def toggle(on: bool) -> None:
    object.__setattr__(_contract, "accepts", _accepts if on else None)  # a frozen dataclass, swapped in place
