"""The GraphQL schema as SDL, for ``docs/schema.graphql``.

Regenerate with::

    python3 -m uv run python -m adrstack.api.schema_snapshot > docs/schema.graphql

``tests/unit/api/test_schema_snapshot.py`` fails when the schema changes without the snapshot.
The SDL is the same whatever the settings (they only switch limits and introspection on and off);
the default development settings are used, not this machine's environment.
"""

from __future__ import annotations

import sys

REGENERATE = "python3 -m uv run python -m adrstack.api.schema_snapshot > docs/schema.graphql"


def sdl() -> str:
    from .schema import build_schema
    from .settings import ApiSettings

    # graphql-core prints types sorted by name and fields in definition order: stable from run to run.
    schema = build_schema(ApiSettings.model_construct()).as_str().rstrip("\n")
    return f"# The adrstack api's GraphQL schema, generated: do not edit.\n# Regenerate: {REGENERATE}\n\n{schema}\n"


def main() -> None:
    sys.stdout.write(sdl())


if __name__ == "__main__":
    main()
