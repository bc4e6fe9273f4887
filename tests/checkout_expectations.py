"""What ``examples/checkout.yaml`` must answer against the demo simulator: the mission's numbers.

Checked twice: by the naive reference walk in tests/examples and by the real gateway in tests/e2e.
"""

from __future__ import annotations

from typing import Any

MISSION_SUMMARY: dict[str, Any] = {
    "cart": {
        "items": [
            {"sku": "SKU-HEADPHONES", "name": "Wireless Headphones", "quantity": 1, "unitPrice": 7999},
            {"sku": "SKU-CHARGER", "name": "USB-C Charger 65W", "quantity": 1, "unitPrice": 3999},
            {"sku": "SKU-CASE", "name": "Protective Case", "quantity": 1, "unitPrice": 2999},
        ],
        "itemCount": 3,
    },
    "pricing": {"subtotal": 14997, "currency": "USD"},
    "shipping": {
        "options": [
            {"id": "standard", "label": "Standard (5-7 business days)", "amount": 599, "currency": "USD"},
            {"id": "express", "label": "Express (1-2 business days)", "amount": 1499, "currency": "USD"},
        ],
        "estimated": True,
    },
    "tax": {"amount": 1237, "rate": 0.0825},
    "total": 16234,
    "availabilityConfirmed": True,
}
