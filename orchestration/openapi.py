"""An OpenAPI 3 document of the plan's aggregate endpoints.

Derived from the compiled plan, so it can never drift from what is served: the
response schema follows the response template's shape (an object's keys are
known; a value that is exactly ``{{ expr }}`` may be anything JSON).
"""

from __future__ import annotations

import re
from typing import Any

from orchestration.plan import Endpoint, Plan
from orchestration.routing import join_path

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_ERROR_STATUSES = {
    "400": "Bad request (invalid JSON body)",
    "401": "Not authenticated, or a required downstream answered 401",
    "403": "A required downstream answered 403",
    "404": "Unknown path, or a required downstream answered 404",
    "408": "Request body not received within GATEWAY_BODY_TIMEOUT_MS",
    "413": "Request body too large",
    "429": "Rate limited (by the gateway or a downstream)",
    "502": "A required downstream failed or its circuit is open",
    "503": "Gateway overloaded (global rate limit)",
    "504": "Downstream services did not answer in time",
}


def schema_of(template_source: Any) -> dict[str, Any]:
    """A JSON schema for a response template's source value."""
    if isinstance(template_source, dict):
        properties = {key: schema_of(value) for key, value in template_source.items()}
        return {"type": "object", "properties": properties}
    if isinstance(template_source, list):
        return {"type": "array", "items": schema_of(template_source[0]) if template_source else {}}
    if isinstance(template_source, str):
        is_expression = template_source.strip().startswith("{{") and template_source.strip().endswith("}}")
        return {} if is_expression and template_source.count("{{") == 1 else {"type": "string"}
    if isinstance(template_source, bool):
        return {"type": "boolean"}
    if isinstance(template_source, (int, float)):
        return {"type": "number"}
    return {"nullable": True}


def _operation(endpoint: Endpoint, full_path: str, has_auth: bool) -> dict[str, Any]:
    success = schema_of(endpoint.response.source)
    if success.get("type") == "object":
        success["properties"] = {
            **success["properties"],
            "partialData": {"type": "boolean", "description": "present and true when an optional call failed"},
            "failedServices": {"type": "array", "items": {"type": "string"}},
        }
    responses: dict[str, Any] = {
        "200": {"description": "The assembled response", "content": {"application/json": {"schema": success}}},
    }
    for status in _ERROR_STATUSES:
        responses[status] = {"$ref": f"#/components/responses/Error{status}"}
    operation: dict[str, Any] = {
        "operationId": endpoint.name,
        "summary": endpoint.purpose or endpoint.name,
        "parameters": [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _PARAM.findall(full_path)
        ],
        "responses": responses,
    }
    if endpoint.method in {"POST", "PUT", "PATCH"}:
        operation["requestBody"] = {"content": {"application/json": {"schema": {"type": "object"}}}}
    if has_auth:
        operation["security"] = [{"gateway": []}]
    return operation


def _components(plan: Plan) -> dict[str, Any]:
    envelope = {
        "type": "object",
        "required": ["error", "data"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "failedServices", "partialData", "requestId"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "failedServices": {"type": "array", "items": {"type": "string"}},
                    "partialData": {"type": "boolean"},
                    "requestId": {"type": "string"},
                },
            },
            "data": {"type": "object"},
        },
    }
    responses = {
        f"Error{status}": {
            "description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}},
        }
        for status, description in _ERROR_STATUSES.items()
    }
    components: dict[str, Any] = {"schemas": {"ErrorEnvelope": envelope}, "responses": responses}
    auth = plan.layer.auth
    if auth.type == "jwt":
        components["securitySchemes"] = {"gateway": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}
    elif auth.type == "api_key":
        components["securitySchemes"] = {"gateway": {"type": "apiKey", "in": "header", "name": auth.api_key_header}}
    elif auth.type == "oauth2_introspection":
        components["securitySchemes"] = {"gateway": {"type": "http", "scheme": "bearer"}}
    elif auth.type == "session":
        components["securitySchemes"] = {"gateway": {"type": "apiKey", "in": "cookie", "name": "sessionid"}}
    return components


def openapi_document(plan: Plan) -> dict[str, Any]:
    has_auth = plan.layer.auth.type != "none"
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in plan.endpoints:
        full_path = join_path(plan.layer.base_path, endpoint.path)
        paths.setdefault(full_path, {})[endpoint.method.lower()] = _operation(endpoint, full_path, has_auth)
    return {
        "openapi": "3.0.3",
        "info": {"title": plan.layer.name, "version": plan.version, "description": f"Owner: {plan.layer.owner}"},
        "paths": paths,
        "components": _components(plan),
    }
