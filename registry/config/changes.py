"""What changed between two configuration documents: a unified diff of their exported
YAML (what people review) and a one-line summary (what a history list shows), e.g.
``endpoint checkout-summary: calls.shipping.timeout_ms 500 → 300``.

Pure: no database. Services are matched by name, endpoints by name and calls by id, so
reordering or renaming reads as what it is rather than as a shifted list.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from typing import Any

from registry.config.dumping import config_dump
from registry.config.schema import DOCUMENT
from registry.config.structure import normalize

SUMMARY_MAX_CHARS = 480
_MISSING = object()


def canonical(document: Mapping[str, Any]) -> dict[str, Any]:
    """A checked document in the form export writes (defaults filled in), so a diff shows
    only what an import would really change."""
    return dict(normalize(document, DOCUMENT))


def unified_diff(before: Mapping[str, Any] | None, after: Mapping[str, Any], *, labels: tuple[str, str]) -> str:
    """The unified diff of the two documents' YAML ('' when they are the same)."""
    old = config_dump(before).splitlines(keepends=True) if before is not None else []
    new = config_dump(after).splitlines(keepends=True)
    return "".join(difflib.unified_diff(old, new, fromfile=labels[0], tofile=labels[1]))


def change_lines(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> list[str]:
    """One line per changed entity (layer, a service, an endpoint), in document order."""
    if before is None:
        return ["initial configuration"]
    lines: list[str] = []
    _entity("layer", before.get("layer"), after.get("layer"), lines)
    _keyed("service", _mapping(before.get("services")), _mapping(after.get("services")), lines)
    _keyed("endpoint", _by_name(before.get("endpoints")), _by_name(after.get("endpoints")), lines)
    return lines


def change_summary(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> str:
    """The changes on one line, shortened to fit a list column."""
    lines = change_lines(before, after)
    if not lines:
        return "no change"
    text = "; ".join(lines)
    return text if len(text) <= SUMMARY_MAX_CHARS else text[: SUMMARY_MAX_CHARS - 1] + "…"


def _keyed(kind: str, old: dict[str, Any], new: dict[str, Any], lines: list[str]) -> None:
    for name in [*old, *(n for n in new if n not in old)]:
        if name not in new:
            lines.append(f"{kind} {name} removed")
        elif name not in old:
            lines.append(f"{kind} {name} added")
        else:
            _entity(f"{kind} {name}", old[name], new[name], lines)
    if kind == "endpoint" and [n for n in old if n in new] != [n for n in new if n in old]:
        lines.append("endpoints reordered")  # services are kept by name; endpoints in file order


def _entity(label: str, old: Any, new: Any, lines: list[str]) -> None:
    flat_old, flat_new = _flatten(old), _flatten(new)
    changes = []
    for path in [*flat_old, *(p for p in flat_new if p not in flat_old)]:
        a, b = flat_old.get(path, _MISSING), flat_new.get(path, _MISSING)
        if a != b or type(a) is not type(b):
            changes.append(f"{path} {_show(a)} → {_show(b)}")
    if changes:
        lines.append(f"{label}: {', '.join(changes)}")


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Leaves by dotted path; a list of calls is keyed by call id (``calls.shipping``)."""
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out |= _flatten(item, f"{prefix}.{key}" if prefix else str(key))
        return out
    if prefix.endswith("calls") and isinstance(value, list) and all(_has_id(c) for c in value):
        out = {}
        for call in value:
            out |= _flatten(call, f"{prefix}.{call['id']}")
        return out
    return {prefix: value}


def _has_id(value: Any) -> bool:
    return isinstance(value, Mapping) and isinstance(value.get("id"), str)


def _show(value: Any) -> str:
    if value is _MISSING:
        return "(none)"
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)
    return text if len(text) <= 60 else text[:59] + "…"


def _mapping(value: Any) -> dict[str, Any]:
    return {str(k): v for k, v in value.items()} if isinstance(value, Mapping) else {}


def _by_name(value: Any) -> dict[str, Any]:
    items = value if isinstance(value, list) else []
    return {str(e.get("name")): e for e in items if isinstance(e, Mapping)}
