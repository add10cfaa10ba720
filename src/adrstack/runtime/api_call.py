"""One GraphQL request to the api, as an operator's script would send it (``up`` provisions the
demo VENs and schedules the demo event this way, through the same checks as anyone else)."""

from __future__ import annotations

import json
import urllib.request
from typing import Any


class GraphQLFailed(RuntimeError):
    pass


def graphql(api_url: str, query: str, variables: dict[str, Any] | None = None, token: str | None = None,
            timeout: float = 10.0) -> dict[str, Any]:
    """The answer's ``data``; GraphQLFailed (with the first error's message) when it has errors or
    the api cannot be reached."""
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(f"{api_url}/graphql", data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            answer = json.loads(r.read())
    except (OSError, ValueError) as e:
        raise GraphQLFailed(str(e)) from e
    if answer.get("errors"):
        raise GraphQLFailed(answer["errors"][0].get("message") or "error")
    return answer.get("data") or {}
