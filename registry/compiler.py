"""The one bridge from the registry's models to the engine's Plan.

models -> canonical document (``selectors.config_document_get``) -> Plan
(``config.plan.plan_from_document``): the same path ``gateway check`` uses on a
file, so a configuration that checks is one that compiles. Every template is
compiled here, once per configuration version.
"""

from __future__ import annotations

from orchestration.plan import Plan
from registry.config.plan import plan_from_document
from registry.selectors import config_document_get, config_version_read

__all__ = ["compile_plan", "plan_from_document"]


def compile_plan(*, version: str | None = None) -> Plan:
    """The Plan of the configuration in the database.

    The version is read before the configuration; inside ``selectors.config_snapshot``
    the two agree, outside it a change landing between the two reads makes the plan
    newer than its label.
    """
    if version is None:
        version = config_version_read()
    return plan_from_document(config_document_get(), version=version)
