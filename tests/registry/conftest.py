"""Fixtures of the registry tests: the Checkout BFF document and a file writer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from registry.config.loading import config_read

GOOD_FILE = Path(__file__).with_name("gateway.yaml")


@pytest.fixture
def document() -> dict[str, Any]:
    """A fresh copy of the good document, free to mutate."""
    return config_read(GOOD_FILE)


@pytest.fixture
def write_yaml(tmp_path: Path) -> Callable[[Any], Path]:
    def write(content: Any, name: str = "gateway.yaml") -> Path:
        path = tmp_path / name
        text = content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False)
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    """admin_client creates a superuser; PBKDF2 would cost a second per test."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
