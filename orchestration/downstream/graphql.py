"""GraphQL downstream calls (contract section 8): the request body, and the answer's ``data``.

A call with ``graphql: {query, variables}`` POSTs ``{"query", "variables"}`` (plus
``operationName`` when configured) to its path; the query is sent as written, never
templated (its ``{ }`` are GraphQL's), the variables are templates. The result the
other templates read is the answer's ``data``:

- ``data`` present (not null): the call succeeds with it, even with ``errors`` beside it
  (a partial GraphQL result: failed fields are null, as the service reported them);
- ``errors`` and no ``data`` (absent or null): the call fails, kind ``graphql_error`` —
  a required call gets 502 ``DOWNSTREAM_FAILURE``, an optional one its fallback. Not a
  breaker failure and not retried: the contract's breaker failures are 5xx, timeouts,
  connection errors and unparseable bodies, and a GraphQL error is most often about what
  was asked (a bad id, a variable that rendered null), so clients must not be able to
  open a breaker for everyone by asking for missing things;
- anything else (not a JSON object, neither ``data`` nor ``errors``): ``bad_body``, which
  is an unparseable answer and counts for the breaker like any other.
A non-2xx answer stays a non-2xx answer (section 2's table), whatever its body says.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestration.outcome import Outcome, OutcomeKind
from orchestration.plan import GraphqlRequest


def request_body(graphql: GraphqlRequest, context: Mapping[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"query": graphql.query, "variables": graphql.variables.render(context) or {}}
    if graphql.operation_name:
        body["operationName"] = graphql.operation_name
    return body


def result(outcome: Outcome) -> Outcome:
    """The outcome of a GraphQL call, from the outcome of its HTTP exchange."""
    if not outcome.ok:
        return outcome
    answer = outcome.body
    if not isinstance(answer, dict) or ("data" not in answer and "errors" not in answer):
        return Outcome(OutcomeKind.BAD_BODY, status=outcome.status, detail="not a GraphQL response")
    data = answer.get("data")
    if data is None:
        detail = f"GraphQL errors: {_messages(answer.get('errors'))}"
        return Outcome(OutcomeKind.GRAPHQL_ERROR, status=outcome.status, detail=detail)
    return Outcome(OutcomeKind.OK, status=outcome.status, body=data)


def _messages(errors: Any) -> str:
    if not isinstance(errors, list) or not errors:
        return "none given"
    shown = [str(error.get("message", "")) if isinstance(error, dict) else str(error) for error in errors[:3]]
    return "; ".join(text[:200] for text in shown)
