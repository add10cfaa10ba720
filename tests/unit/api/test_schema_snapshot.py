"""docs/schema.graphql is the SDL of the api's schema: a schema change without the snapshot fails here."""

from __future__ import annotations

from pathlib import Path

from adrstack.api.schema_snapshot import REGENERATE, sdl

SNAPSHOT = Path(__file__).resolve().parents[3] / "docs" / "schema.graphql"


def test_docs_schema_graphql_is_the_current_schema():
    actual = SNAPSHOT.read_text(encoding="utf-8") if SNAPSHOT.exists() else ""
    assert actual == sdl(), f"docs/schema.graphql is not the current GraphQL schema: run `{REGENERATE}` and commit it"
