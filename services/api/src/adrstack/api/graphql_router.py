"""strawberry's FastAPI router, with request bodies that are JSON but not an operation
answered 400: strawberry itself calls ``.get`` on whatever the JSON was (a string, null)
and fails with a 500, and lets an invalid UTF-8 body escape as one too."""

from __future__ import annotations

import json
from typing import Any

from strawberry.fastapi import GraphQLRouter
from cross_web import HTTPException


class ApiGraphQLRouter(GraphQLRouter):
    def parse_json(self, data: str | bytes) -> Any:
        try:
            parsed = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise HTTPException(400, "Unable to parse request body as UTF-8 JSON") from e
        if not isinstance(parsed, (dict, list)):  # a list is a batch, which strawberry refuses itself
            raise HTTPException(400, 'The request body must be a JSON object like {"query": "..."}')
        return parsed
