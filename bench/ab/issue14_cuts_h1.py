"""A/B for bench/micro.py --ab: both sides serve the checkout with every issue-14 feature
(``bench/ab/resilience_features.py``'s B); B = this branch's cuts of their cost (session
2026-12-05c), A = the same definitions as they were at commit ffa5c29, put back in place:

* stale-if-error: ``Executor._keep_or_recall_stale`` (``stale_key`` + ``keep`` per good call,
  not ``keep_result``);
* the deadline header: ``DownstreamClient._exchange`` (``round`` and ``max``, a second clock
  reading) and ``_lean`` (the value among the request headers, not a cached line);
* the hedge: ``_Race`` (every field set, ``AttemptCancel.__init__`` through ``super()``) and
  ``AttemptCancel.bind`` under the lock.

The retry budget's tally (a fourth cut, in this file's runs until commit 0c0f9fd) was
reverted: it is on neither side now. Not swapped (both sides have them): ``http1.read_head``
without ``min`` and the Redis breaker store's count of a success without ``setdefault``.

The old definitions are read from git (``git show ffa5c29:<file>``) and compiled in their
module's namespace, so this file needs the repository's history.

    python bench/micro.py --ab bench/ab/issue14_cuts_h1.py -n 12000 -c 4 --blocks 48 [--redis URL]
"""

from __future__ import annotations
import __future__

import ast
import subprocess
from pathlib import Path
from typing import Any

from resilience_config import ALL, with_features  # bench/resilience_config.py

from gateway_project import wiring
from orchestration import executor
from orchestration.downstream import client
from orchestration.resilience import hedge
from orchestration.web import aggregate
from orchestration.web.runtime import LoadedConfig
from registry import selectors
from registry.config.plan import plan_from_document

BEFORE = "ffa5c29"
_ROOT = Path(__file__).resolve().parents[2]


def _old(module: Any, path: str, *names: str) -> dict[str, Any]:
    """``names`` (top-level definitions, or ``Class.method``) as they were at ``BEFORE``."""
    source = subprocess.run(
        ["git", "show", f"{BEFORE}:{path}"], cwd=_ROOT, check=True, capture_output=True, text=True
    ).stdout
    tree = ast.parse(source)
    found: dict[str, Any] = {}
    for name in names:
        owner, _, member = name.rpartition(".")
        nodes = tree.body
        if owner:
            nodes = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == owner).body
        node = next(n for n in nodes if isinstance(n, ast.FunctionDef | ast.ClassDef) and n.name == member)
        namespace = dict(vars(module))
        code = compile(
            ast.Module(body=[node], type_ignores=[]),
            f"{BEFORE}:{path}",
            "exec",
            flags=__future__.annotations.compiler_flag,
            dont_inherit=True,
        )
        exec(code, namespace)
        found[name] = namespace[member]
    return found


_OLD = {
    **_old(executor, "orchestration/executor.py", "Executor._keep_or_recall_stale"),
    **_old(client, "orchestration/downstream/client.py", "DownstreamClient._exchange", "DownstreamClient._lean"),
    **_old(hedge, "orchestration/resilience/hedge.py", "_Race", "AttemptCancel.bind"),
}
_NEW = {
    "Executor._keep_or_recall_stale": executor.Executor._keep_or_recall_stale,
    "DownstreamClient._exchange": client.DownstreamClient._exchange,
    "DownstreamClient._lean": client.DownstreamClient._lean,
    "_Race": hedge._Race,
    "AttemptCancel.bind": hedge.AttemptCancel.bind,
}

_plan = plan_from_document(with_features(selectors.config_document_get(), ALL), version="B")
_runtime = wiring._build_runtime(LoadedConfig(plan=_plan, api_keys=selectors.api_key_subjects_active()))
aggregate.install_runtime_source(lambda: _runtime)


def toggle(on: bool) -> None:
    chosen = _NEW if on else _OLD
    executor.Executor._keep_or_recall_stale = chosen["Executor._keep_or_recall_stale"]
    client.DownstreamClient._exchange = chosen["DownstreamClient._exchange"]
    client.DownstreamClient._lean = chosen["DownstreamClient._lean"]
    hedge._Race = chosen["_Race"]
    hedge.AttemptCancel.bind = chosen["AttemptCancel.bind"]
