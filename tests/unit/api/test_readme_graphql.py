"""The README's examples cannot rot: every GraphQL example validates against the schema (field
names, arguments, input types, the variables it uses declared with the right types), and no
example is written with a made-up id (`ven-0a1b2c3d4e5f`, `evt-123`, `<ven-id>`) that fails when
pasted: the ids a VTN assigns are passed as variables, as the walkthrough sets them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from graphql import DocumentNode, ListValueNode, ObjectFieldNode, VariableNode, parse, validate, visit
from graphql.language import ArgumentNode, Visitor

from adrstack.api.schema import build_schema
from adrstack.api.settings import ApiSettings

README = Path(__file__).resolve().parents[3] / "README.md"

# The placeholders the README once had: each failed when pasted (issue 9).
KNOWN_PLACEHOLDERS = ("ven-0a1b2c3d4e5f", "ven-5e6f7a8b9c0d", "evt-123", "rr-0123456789abcdef", "ven123", "event002")
# Ids the VTN assigns (ven-<hex>, evt-<hex>, rr-<hex>) cannot be known when the README is written.
ASSIGNED_ID = re.compile(r"(?<![\w.-])(?:ven|evt|rr)-[0-9a-f]{4,}\b")
ANGLE_PLACEHOLDER = re.compile(r"<[A-Za-z][^<>\n]*>")  # <ven-id>, <event id>, <token> (not a heredoc's <<)
# Arguments and input fields that name something the VTN assigned: a literal there is made up.
ASSIGNED_ID_FIELDS = {"venId", "venIds", "eventId", "reportRequestId"}


def code_blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(), re.S)


def operations() -> list[tuple[str, DocumentNode]]:
    """Every operation of every ```graphql block (a block holds several), as its own document."""
    found = []
    for block in code_blocks("graphql"):
        document = parse(block)  # a block that is not GraphQL fails here
        for definition in document.definitions:
            text = block[definition.loc.start:definition.loc.end]
            found.append((text, DocumentNode(definitions=(definition,))))
    return found


def test_the_readme_has_graphql_examples():
    assert len(operations()) >= 25


def test_every_readme_graphql_example_validates():
    schema = build_schema(ApiSettings())._schema
    problems = {text[:70]: [e.message for e in validate(schema, document)] for text, document in operations()}
    assert {op: errors for op, errors in problems.items() if errors} == {}


@pytest.mark.parametrize("placeholder", KNOWN_PLACEHOLDERS)
def test_no_known_placeholder_id_comes_back(placeholder):
    assert placeholder not in README.read_text()


def test_no_example_names_an_id_only_the_vtn_can_assign():
    assert ASSIGNED_ID.findall(README.read_text()) == []


def test_no_angle_bracket_placeholder_in_a_pasted_block():
    found = {lang: ANGLE_PLACEHOLDER.findall(block) for lang in ("graphql", "sh") for block in code_blocks(lang)}
    assert {lang: hits for lang, hits in found.items() if hits} == {}


def literal_ids(document: DocumentNode) -> list[str]:
    """Each literal given to an argument or input field that names a VTN-assigned id."""
    found: list[str] = []

    class Literals(Visitor):
        def enter(self, node, *_):
            if isinstance(node, (ArgumentNode, ObjectFieldNode)) and node.name.value in ASSIGNED_ID_FIELDS:
                values = node.value.values if isinstance(node.value, ListValueNode) else (node.value,)
                found.extend(f"{node.name.value}: {v.loc.source.body[v.loc.start:v.loc.end]}"
                             for v in values if not isinstance(v, VariableNode))

    visit(document, Literals())
    return found


def test_graphql_examples_take_vtn_assigned_ids_as_variables():
    assert {text[:70]: literal_ids(document) for text, document in operations() if literal_ids(document)} == {}


def test_the_checks_catch_what_they_look_for():
    """The scanners above find what they are meant to find, so their passing means something."""
    assert ASSIGNED_ID.findall('venIds: ["ven-0a1b2c3d4e5f"] and evt-9f8e7d6c5b4a') == [
        "ven-0a1b2c3d4e5f", "evt-9f8e7d6c5b4a"]
    assert ANGLE_PLACEHOLDER.findall('event(eventId: "<event-id>") and cat <<EOF') == ["<event-id>"]
    assert literal_ids(parse('mutation($v: String!) { createEvent(input: { venIds: [$v, "ven-1"], '
                             'intervals: [] }) { eventId } } query { event(eventId: "evt-123") { eventId } }')) == [
        'venIds: "ven-1"', 'eventId: "evt-123"']
