"""Write a document as YAML, deterministically (same document, same bytes)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml


class _IndentedDumper(yaml.SafeDumper):
    """Indents list items under their key, as people write gateway.yaml by hand."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def config_dump(document: Mapping[str, Any]) -> str:
    """YAML in the document's own key order (the canonical form orders keys)."""
    return yaml.dump(
        dict(document),
        Dumper=_IndentedDumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=120,
    )
