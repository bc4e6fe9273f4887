"""Read ``gateway.yaml`` (or JSON, which is YAML) into a document.

A file that is not YAML, or not a mapping, is one clear line with the position
(``gateway.yaml: not valid YAML: ... at line 3, column 5``), never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class ConfigSyntaxError(ValueError):
    """The text is not a YAML mapping; ``str()`` is the one line to print."""


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (YAML would silently keep the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str) and key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key '{key}'", key_node.start_mark)
            seen.add(key) if isinstance(key, str) else None
        return super().construct_mapping(node, deep=deep)


def config_parse(text: str, *, source: str = "gateway.yaml") -> dict[str, Any]:
    """The document in ``text``; raises ConfigSyntaxError with one readable line."""
    try:
        document = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        raise ConfigSyntaxError(f"{source}: not valid YAML: {_describe(exc)}") from None
    except yaml.YAMLError as exc:
        raise ConfigSyntaxError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(document, dict):
        kind = "nothing" if document is None else f"a {type(document).__name__}"
        expected = "a mapping (version, layer, services, endpoints)"
        raise ConfigSyntaxError(f"{source}: the top level must be {expected}, got {kind}")
    return document


def config_read(path: str | Path) -> dict[str, Any]:
    """The document in the file at ``path``; unreadable files are one line too."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigSyntaxError(f"{path}: cannot read: {reason}") from None
    return config_parse(text, source=str(path))


def _describe(exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or exc.context or "syntax error"
    if mark is None:
        return problem
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"


def value_parse(text: str, *, source: str) -> Any:
    """Any JSON/YAML value (the admin's template fields); errors are one line too."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        raise ConfigSyntaxError(f"{source}: not valid YAML: {_describe(exc)}") from None
    except yaml.YAMLError as exc:
        raise ConfigSyntaxError(f"{source}: not valid YAML: {exc}") from None
