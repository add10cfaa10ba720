"""Which role each GraphQL field takes: decided in one map, and every field of the schema has an answer."""

from __future__ import annotations

import pytest
from graphql import OperationType, parse

from adrstack.api.permissions import ADMIN_FIELDS, ROUTE_ROLES, check_route, required_role, root_fields
from adrstack.api.auth import Caller
from adrstack.api.errors import Forbidden, Unauthenticated
from adrstack.api.schema import build_schema
from adrstack.api.settings import ApiSettings
from adrstack.shared.api_tokens import Role

SCHEMA = build_schema(ApiSettings())._schema
ROOTS = {OperationType.QUERY: SCHEMA.query_type, OperationType.MUTATION: SCHEMA.mutation_type,
         OperationType.SUBSCRIPTION: SCHEMA.subscription_type}


def test_every_admin_field_exists():
    # A renamed field must not silently lose its protection.
    for operation, field in ADMIN_FIELDS:
        assert field in ROOTS[operation].fields, (operation, field)


@pytest.mark.parametrize("operation", list(ROOTS))
def test_every_root_field_has_a_role(operation):
    for field in ROOTS[operation].fields:
        needed = required_role(operation, field)
        if (operation, field) in ADMIN_FIELDS:
            assert needed is Role.ADMIN
        elif operation is OperationType.MUTATION:
            assert needed is Role.OPERATOR, field
        else:
            assert needed is Role.VIEWER, field


def test_a_mutation_nobody_listed_takes_an_operator():
    assert required_role(OperationType.MUTATION, "launchProgramAddedNextYear") is Role.OPERATOR
    assert required_role(OperationType.QUERY, "somethingNew") is Role.VIEWER


def test_the_admin_fields_are_those_of_provisioning_and_tokens():
    assert {f for _, f in ADMIN_FIELDS} == {"provisionVen", "deprovisionVen", "provisionedVens",
                                             "createApiToken", "revokeApiToken", "apiTokens"}


def test_root_fields_follow_fragments_once():
    doc = parse("query { vens { venId } ...A ... on Query { events { eventId } } } "
                "fragment A on Query { ...B apiTokens { id } } fragment B on Query { ...A __typename }")
    assert sorted(root_fields(doc.definitions[0], doc)) == ["__typename", "apiTokens", "events", "vens"]


def test_routes():
    assert ROUTE_ROLES["/send_event"] is Role.OPERATOR
    check_route(Caller(Role.OPERATOR), "/send_event")
    with pytest.raises(Forbidden):
        check_route(Caller(Role.VIEWER), "/send_event")
    with pytest.raises(Forbidden):  # an unlisted route takes an operator too
        check_route(Caller(Role.VIEWER), "/something_new")
    with pytest.raises(Unauthenticated):
        check_route(None, "/send_event")
