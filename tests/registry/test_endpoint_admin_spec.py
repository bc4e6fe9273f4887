"""The endpoint's admin change page reads like the mission's template (issue 13, item 5):
above the editor the saved endpoint's call sequence and response fields in the
specification's words; the call editor stacked, problems beside their field."""

from __future__ import annotations

import re

import pytest

from registry import models
from tests.registry.test_admin import endpoint_post_data, endpoint_url, html

pytestmark = pytest.mark.django_db


@pytest.fixture
def imported(document):
    from registry.services import config_import

    config_import(document=document)
    return document


def _cells(table_html: str) -> list[list[str]]:
    rows = re.findall(r"<tr>(.*?)</tr>", table_html, re.S)
    cells = [[re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td>(.*?)</td>", row, re.S)] for row in rows]
    return [row for row in cells if row]  # the header row has no <td>


def _table(page: str, testid: str) -> str:
    found = re.search(rf'<table data-testid="{testid}">(.*?)</table>', page, re.S)
    assert found is not None, testid
    return found.group(1)


def test_the_call_sequence_and_response_fields_sit_above_the_editor(admin_client, imported):
    page = html(admin_client.get(endpoint_url("checkout-summary")))

    assert page.index('data-testid="endpoint-spec"') < page.index('name="calls-0-call_id"')
    assert "POST /v1/checkout/summary as saved" in page
    assert '<th scope="col">Order</th><th scope="col">Service Call</th>' in page
    assert _cells(_table(page, "call-sequence")) == [
        ["1", "Cart: GET /carts/{id}?include={include}", "Yes", "200ms", "Fail request"],
        ["2 (parallel)", "Inventory: POST /availability", "Yes", "400ms", "Fail request"],
        ["2 (parallel)", "Pricing: POST /quote", "Yes", "300ms", "Fail request"],
        ["2 (parallel)", "Shipping: POST /estimate", "No", "500ms", 'Return {"options": []}'],
        ["3", "Tax: POST /calculate", "Yes", "300ms", "Fail request"],
    ]
    fields = {row[0]: row[1:] for row in _cells(_table(page, "response-fields"))}
    assert fields["cart.itemCount"] == ["cart", "cart"]
    assert fields["total"] == ["pricing, tax", "pricing, tax"]  # read from two calls
    assert fields["note"] == ["the request only", "—"]


def test_the_call_editor_is_stacked_with_short_json_boxes(admin_client, imported):
    page = html(admin_client.get(endpoint_url("checkout-summary")))
    assert 'class="inline-related' in page and "tabular" not in page.split('id="calls-group"')[1][:400]
    box = re.search(r'<textarea name="calls-0-query"[^>]*>', page)
    assert box is not None and 'rows="2"' in box.group(0) and 'cols="40"' in box.group(0)


def test_a_problem_is_shown_beside_the_field_it_concerns(admin_client, imported):
    endpoint = models.Endpoint.objects.get(name="checkout-summary")
    data = endpoint_post_data(endpoint, **{"calls-2-path": "/quote/{{ crt.id }}"})
    page = html(admin_client.post(endpoint_url("checkout-summary"), data))
    # the message sits right above the path field's own box, tied to its textarea
    box = re.search(
        r'<ul class="errorlist" id="id_calls-2-path_error">(.*?)</ul>\s*'
        r'<div class="flex-container fieldBox field-path errors">(.*?)</textarea>',
        page,
        re.S,
    )
    assert box is not None
    assert "endpoints[0].calls[2].path: unknown call 'crt'" in box.group(1)
    assert 'name="calls-2-path"' in box.group(2) and 'aria-describedby="id_calls-2-path_error"' in box.group(2)


def test_an_unknown_endpoint_id_is_a_404_not_a_500(admin_client, imported):
    assert admin_client.get("/admin/registry/endpoint/999999/change/").status_code in (302, 404)
    assert admin_client.get("/admin/registry/endpoint/not-a-number/change/").status_code in (302, 404)
