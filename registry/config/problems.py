"""A problem found in a configuration document, located like ``endpoints[0].calls[2].path``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Problem:
    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message


class ConfigInvalid(Exception):
    """Raised by the import when the document has problems; carries all of them."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


def key_location(location: str, key: object) -> str:
    return f"{location}.{key}" if location else str(key)


def index_location(location: str, index: int) -> str:
    return f"{location}[{index}]"


def quoted(value: Any) -> str:
    """The bad value as the user wrote it, short."""
    text = f"'{value}'" if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."
