"""Write a document as YAML, deterministically (same document, same bytes)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml


def config_dump(document: Mapping[str, Any]) -> str:
    """YAML in the document's own key order (the canonical form orders keys)."""
    return yaml.safe_dump(dict(document), sort_keys=False, allow_unicode=True, default_flow_style=False, width=120)
