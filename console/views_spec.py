"""The living specification and explain pages (contract section 6).

``/console/spec/`` needs staff; ``/console/explain/`` also needs
``console.explain_requests``: it runs a request through the real engine, and a
POST endpoint's downstream calls happen for real, so the form makes the
operator say so before it runs one.
"""

from __future__ import annotations

import re
from typing import Any

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_http_methods

from console.explain_run import ExplainForm, explain_run
from console.living_spec import spec_page_get

EXPLAIN_PERMISSION = "console.explain_requests"
_PARAM = re.compile(r"\{(\w+)\}")


@require_GET
@staff_member_required
def spec(request: HttpRequest) -> HttpResponse:
    return render(request, "console/spec.html", {"page": spec_page_get()})


def _pairs(text: str) -> dict[str, str]:
    """``name=value`` lines (the query string's parameters)."""
    pairs: dict[str, str] = {}
    for line in text.splitlines():
        if line.strip():
            name, _, value = line.partition("=")
            pairs[name.strip()] = value.strip()
    return pairs


@require_http_methods(["GET", "POST"])
@staff_member_required
def explain(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm(EXPLAIN_PERMISSION):
        return HttpResponseForbidden("Explaining requests needs the console.explain_requests permission.")
    from gateway_project.observability import current_runtime

    runtime = current_runtime()
    endpoints: list[dict[str, Any]] = [
        {"endpoint": e, "params": _PARAM.findall(e.path), "path": runtime.plan.layer.base_path.rstrip("/") + e.path}
        for e in runtime.plan.endpoints
    ]
    data = request.POST if request.method == "POST" else request.GET
    chosen = data.get("endpoint") or (endpoints[0]["endpoint"].name if endpoints else "")
    selected = next((e for e in endpoints if e["endpoint"].name == chosen), None)
    path_fields = [(name, data.get(f"path_{name}", "")) for name in (selected["params"] if selected else [])]
    context: dict[str, object] = {
        "endpoints": endpoints,
        "chosen": chosen,
        "selected": selected,
        "path_fields": path_fields,
        "data": data,
        "result": None,
    }
    if request.method == "POST":
        if selected is None:
            context["error"] = f"No endpoint named {chosen!r} is served."
        elif selected["endpoint"].method != "GET" and data.get("confirm") != "yes":
            context["error"] = "This endpoint is not a GET: tick the box to confirm it may call downstream services."
        else:
            query, body, claims = _pairs(data.get("query", "")), data.get("body", ""), data.get("claims", "")
            form = ExplainForm(chosen, dict(path_fields), query, body, claims)
            context["result"] = explain_run(runtime, form, operator=request.user.get_username())
    return render(request, "console/explain.html", context)
