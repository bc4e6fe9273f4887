"""Checks of a call's ``graphql`` block (contract section 8).

The query is parsed and validated as GraphQL syntax with graphql-core when the
configuration is checked, so a typo never reaches the downstream: it must hold an
executable operation (one, or ``operation_name`` naming one of several) and only
executable definitions. Its ``$variables`` are held against ``variables``: a key the
operation does not declare, or a declared non-null variable without a default that is
not given, is reported. The variables are templates, checked like ``body`` is; a
GraphQL call is a POST (the method defaults to it) and carries no ``body``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import GraphQLError, parse
from graphql.language import DocumentNode, ExecutableDefinitionNode, NonNullTypeNode, OperationDefinitionNode

from registry.config.problems import Problem, key_location, quoted
from registry.config.references import Resolver, check_template


def check_graphql(call: Mapping[str, Any], location: str, resolver: Resolver | None, out: list[Problem]) -> None:
    graphql = call.get("graphql")
    if not isinstance(graphql, Mapping):
        return
    where = key_location(location, "graphql")
    method = call.get("method", "POST")
    if isinstance(method, str) and method != "POST":
        out.append(Problem(key_location(location, "method"), f"a graphql call is sent with POST, not {method}"))
    if "body" in call:
        out.append(Problem(key_location(location, "body"), "body and graphql are exclusive: graphql makes the body"))
    variables = graphql.get("variables", {})
    if isinstance(variables, Mapping):
        check_template(variables, key_location(where, "variables"), resolver, out)
    query = graphql.get("query")
    if not isinstance(query, str):
        return
    try:
        document = parse(query)
    except GraphQLError as error:
        out.append(Problem(key_location(where, "query"), f"not a GraphQL document: {error.message}{_at(error)}"))
        return
    operation = _operation(document, graphql.get("operation_name"), where, out)
    if operation is not None and isinstance(variables, Mapping):
        _check_variables(operation, variables, key_location(where, "variables"), out)


def _operation(document: DocumentNode, name: Any, location: str, out: list[Problem]) -> OperationDefinitionNode | None:
    query_at = key_location(location, "query")
    if any(not isinstance(node, ExecutableDefinitionNode) for node in document.definitions):
        out.append(Problem(query_at, "only operations and fragments can be sent (no type definitions)"))
        return None
    operations = [node for node in document.definitions if isinstance(node, OperationDefinitionNode)]
    if not operations:
        out.append(Problem(query_at, "holds no operation (query, mutation or subscription)"))
        return None
    if isinstance(name, str):
        named = [op for op in operations if op.name is not None and op.name.value == name]
        if not named:
            out.append(Problem(key_location(location, "operation_name"), f"no operation named {quoted(name)}"))
            return None
        return named[0]
    if len(operations) > 1:
        message = f"the query holds {len(operations)} operations; name the one to run with operation_name"
        out.append(Problem(key_location(location, "operation_name"), message))
        return None
    return operations[0]


def _check_variables(
    operation: OperationDefinitionNode, variables: Mapping[str, Any], location: str, out: list[Problem]
) -> None:
    declared = {definition.variable.name.value: definition for definition in operation.variable_definitions or ()}
    for key in variables:
        if key not in declared:
            known = ", ".join(f"${name}" for name in declared) or "none"
            out.append(Problem(key_location(location, key), f"the operation declares no ${key} (it declares {known})"))
    for name, definition in declared.items():
        needed = isinstance(definition.type, NonNullTypeNode) and definition.default_value is None
        if needed and name not in variables:
            out.append(Problem(location, f"${name} is required by the operation and not given"))


def _at(error: GraphQLError) -> str:
    locations = error.locations or []
    return f" (line {locations[0].line}, column {locations[0].column})" if locations else ""
