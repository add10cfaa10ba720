"""What each role may do, decided here and only here.

Queries and subscriptions need ``viewer`` and mutations ``operator`` (so a mutation added later
needs at least an operator without anyone having to remember it); the fields in
:data:`ADMIN_FIELDS` need ``admin``. The operation's root fields decide, fragments included:
nothing below them is reachable any other way. The check runs once per operation, after the
document is parsed and validated and before anything executes, over HTTP and websockets alike.
"""

from __future__ import annotations

from typing import Iterator

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    get_operation_ast,
)
from strawberry.extensions import SchemaExtension

from adrstack.shared.api_tokens import Role

from .auth import Caller, caller_of
from .errors import Forbidden, Unauthenticated

BASE_ROLE = {
    OperationType.QUERY: Role.VIEWER,
    OperationType.SUBSCRIPTION: Role.VIEWER,
    OperationType.MUTATION: Role.OPERATOR,
}

ADMIN_FIELDS = frozenset({
    (OperationType.QUERY, "apiTokens"),
    (OperationType.QUERY, "provisionedVens"),
    (OperationType.MUTATION, "provisionVen"),
    (OperationType.MUTATION, "deprovisionVen"),
    (OperationType.MUTATION, "createApiToken"),
    (OperationType.MUTATION, "revokeApiToken"),
})


# REST routes (send_event's JsonErrorRoute): /send_event creates an event, like createEvent; a
# route added later needs an operator unless it is listed here.
ROUTE_ROLES = {"/send_event": Role.OPERATOR}
ROUTE_DEFAULT_ROLE = Role.OPERATOR


def required_role(operation: OperationType, field: str) -> Role:
    """The least role that may use ``field`` at the root of an ``operation``."""
    return Role.ADMIN if (operation, field) in ADMIN_FIELDS else BASE_ROLE[operation]


def root_fields(operation: OperationDefinitionNode, document: DocumentNode) -> Iterator[str]:
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    seen: set[str] = set()
    pending = [operation.selection_set]
    while pending:
        for selection in pending.pop().selections:
            if isinstance(selection, FieldNode):
                yield selection.name.value
            elif isinstance(selection, InlineFragmentNode):
                pending.append(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name not in seen and name in fragments:
                    seen.add(name)
                    pending.append(fragments[name].selection_set)


def _check(caller: Caller | None, needed: Role, what: str) -> None:
    if caller is None:
        raise Unauthenticated()
    if not caller.role.allows(needed):
        raise Forbidden(f"a {caller.role.value} token may not use {what}; it takes the {needed.value} role")


def check_route(caller: Caller | None, path: str) -> None:
    _check(caller, ROUTE_ROLES.get(path, ROUTE_DEFAULT_ROLE), path)


def check_operation(caller: Caller | None, document: DocumentNode, operation_name: str | None) -> None:
    """Raise Unauthenticated or Forbidden unless ``caller`` may run this operation."""
    if caller is None:
        raise Unauthenticated()
    operation = get_operation_ast(document, operation_name)
    if operation is None:  # validation has already refused the document
        return
    for field in root_fields(operation, document):
        _check(caller, required_role(operation.operation, field), f"{operation.operation.value} {field}")


class RoleCheck(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        check_operation(caller_of(context.context["request"]), context.graphql_document, context.operation_name)
        yield
