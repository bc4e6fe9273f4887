"""``manage.py gateway spec``: the template filled from the live configuration (contract section 6)."""

from __future__ import annotations

import re
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from registry.config.loading import config_read
from registry.config.plan import plan_from_document
from registry.spec import readable_path, spec_build, spec_markdown

ROOT = Path(__file__).resolve().parents[2]
CHECKOUT = ROOT / "examples" / "checkout.yaml"
GOLDEN = Path(__file__).with_name("golden") / "checkout_spec.md"


def run(*args: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("gateway", *args, stdout=out, stderr=err)
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def _stable(text: str) -> str:
    """The date and the configuration version change with every run: placeholders."""
    text = re.sub(r"\| Date \| [0-9-]+ \|", "| Date | DATE |", text)
    return re.sub(r"\| Configuration version \| \S+ \|", "| Configuration version | VERSION |", text)


@pytest.fixture
def checkout_imported(db):
    assert run("import", str(CHECKOUT))[0] == 0


def test_spec_of_the_live_configuration_matches_the_golden_file(checkout_imported):
    code, out, err = run("spec")
    assert (code, err) == (0, "")
    assert _stable(out) == GOLDEN.read_text(encoding="utf-8")


def test_spec_reproduces_the_templates_filled_checkout_tables(checkout_imported):
    out = run("spec")[1]
    # The template's "Filled Example: E-Commerce Checkout BFF", row by row.
    assert "Call sequence (total timeout: 2000ms)." in out
    assert "| Order | Service Call | Required? | Timeout | Fallback |" in out
    for row in (
        "| 1 | Cart: GET /carts/{id} | Yes | 200ms | Fail request |",
        "| 2 (parallel) | Inventory: POST /check-availability | Yes | 400ms | Fail request |",
        "| 2 (parallel) | Pricing: POST /calculate | Yes | 200ms | Fail request |",
        "| 2 (parallel) | Shipping: POST /estimate | No | 500ms | Return null |",
        "| 3 | Tax: POST /calculate | Yes | 300ms | Fail request |",
    ):
        assert row in out
    assert (
        "| Cart Service | http://127.0.0.1:9101 | Bearer token (the client's, forwarded) | 45ms | 99.95% | Cart Team |"
        in out
    )
    for title in (
        "## Orchestration Layer Overview",
        "## Downstream Service Registry",
        "## Error Handling Strategy",
        "### Circuit Breaker Configuration",
        "### Retry Policy",
        "## Rate Limiting",
        "## Caching Strategy",
        "## Monitoring and Observability",
    ):
        assert title in out
    assert "| Setting | Value |" in out and "| Timeout (total) | 2000ms |" in out


def test_spec_follows_a_change_of_the_configuration(checkout_imported, tmp_path):
    document = config_read(CHECKOUT)
    document["endpoints"][0]["calls"][3]["timeout_ms"] = 450
    document["endpoints"][0]["calls"][3]["required"] = True
    changed = tmp_path / "changed.yaml"
    import yaml

    changed.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    assert run("import", str(changed))[0] == 0
    assert "| 2 (parallel) | Shipping: POST /estimate | Yes | 450ms | Fail request |" in run("spec")[1]


def test_spec_of_one_endpoint_to_a_file(checkout_imported, tmp_path):
    target = tmp_path / "dashboard.md"
    code, out, _ = run("spec", "-o", str(target), "--endpoint", "dashboard")
    assert (code, out) == (0, "")
    text = target.read_text(encoding="utf-8")
    assert "### Endpoint 2: dashboard" in text and "checkout-summary" not in text
    assert "| 1 (parallel) | Users: GET /users/{id} | Yes | 500ms | Fail request |" in text
    assert (
        "| 1 (parallel) | Preferences: GET /preferences/{user_id} | No | 300ms | "
        'Return {"theme": "light", "notifications": true} |' in text
    )


def test_spec_of_an_unknown_endpoint_is_a_located_error(checkout_imported):
    assert run("spec", "--endpoint", "nope") == (
        1,
        "",
        "--endpoint: no endpoint named 'nope' (endpoints: checkout-summary, dashboard, cart-page)\n",
    )


def test_response_fields_name_the_calls_they_read():
    plan = plan_from_document(config_read(CHECKOUT), version="t")
    summary = spec_build(plan, date="d").endpoints[0]
    sources = {field.path: field.calls for field in summary.fields}
    assert sources["total"] == ("pricing", "tax")
    assert sources["availabilityConfirmed"] == ("inventory",)
    assert sources["cart.itemCount"] == ("cart",)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("/carts/{{ request.body.cartId }}", "/carts/{id}"),
        ("/users/{{ request.path.user_id }}", "/users/{id}"),
        ("/orders/{{ cart.orderNumber }}/lines", "/orders/{orderNumber}/lines"),
        ("/x/{{ join(',', cart.ids) }}", "/x/{join(',', cart.ids)}"),
    ],
)
def test_readable_path(source, expected):
    assert readable_path(source) == expected


def test_markdown_escapes_pipes_in_cells():
    plan = plan_from_document(config_read(CHECKOUT), version="t|x")
    assert "| Configuration version | t\\|x |" in spec_markdown(spec_build(plan, date="d"))
