"""Every GraphQL example in the README is valid against the schema (field names, arguments,
input types), so the examples cannot drift from the API."""

from __future__ import annotations

import re
from pathlib import Path

from graphql import parse, validate

from adrstack.api.schema import build_schema
from adrstack.api.settings import ApiSettings

README = Path(__file__).resolve().parents[3] / "README.md"


def operations() -> list[str]:
    blocks = re.findall(r"```graphql\n(.*?)```", README.read_text(), re.S)
    return [op for block in blocks for op in re.split(r"\n(?=mutation|query|subscription|\{)", block) if op.strip()]


def test_the_readme_has_graphql_examples():
    assert len(operations()) >= 8


def test_every_readme_graphql_example_validates():
    schema = build_schema(ApiSettings())._schema
    problems = {op.strip()[:70]: [e.message for e in validate(schema, parse(op))] for op in operations()}
    assert {op: errors for op, errors in problems.items() if errors} == {}
