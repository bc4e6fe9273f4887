"""The endpoint's change page reads like the mission's template: above the editor, the
endpoint's call sequence and response fields as ``gateway spec`` and /console/spec/ word
them (``registry.spec``: one renderer of the specification, not a second one here)."""

from __future__ import annotations

import datetime as dt
import logging

from registry.compiler import compile_plan
from registry.selectors import config_snapshot
from registry.spec import EndpointSpec, spec_build

logger = logging.getLogger(__name__)


def endpoint_spec_get(*, name: str) -> EndpointSpec | None:
    """The saved endpoint ``name``'s part of the specification (None: not in the plan)."""
    try:
        with config_snapshot():  # the plan of one committed state
            plan = compile_plan()
        return spec_build(plan, date=dt.date.today().isoformat(), endpoint=name).endpoints[0]
    except KeyError:
        return None
    except Exception:  # a stored configuration that no longer compiles: the editor must still open
        logger.warning("endpoint %s: the specification could not be rendered", name, exc_info=True)
        return None
