"""The ops e2e configuration, pointed at the fake downstream servers of a test."""

from __future__ import annotations

from pathlib import Path

import yaml

CONFIG_FILE = Path(__file__).with_name("ops_gateway.yaml")


def ops_config(**base_urls: str) -> str:
    document = yaml.safe_load(CONFIG_FILE.read_text(encoding="utf-8"))
    for name, url in base_urls.items():
        document["services"][name]["base_url"] = url
    return yaml.safe_dump(document, sort_keys=False)
