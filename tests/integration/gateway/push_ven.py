"""A VEN's push endpoint for the gateway to POST to (openleadr's VEN has no push server): a small
aiohttp server playing one of the VEN's 2.0b services."""

from __future__ import annotations

from aiohttp import web
from openleadr.messaging import create_message, parse_message


class PushVen:
    """The VEN's side of a push: records every oadrDistributeEvent POSTed to <address>/EiEvent
    and answers with ``statuses`` in turn (then 200), with an oadrResponse or, when
    ``answer_created`` is set, an inline oadrCreatedEvent opting in to every event."""

    def __init__(self, statuses: list[int] | None = None, answer_created: bool = False):
        self.statuses = list(statuses or [])
        self.answer_created = answer_created
        self.requests: list[tuple[int, str, dict]] = []  # (status answered, content type, payload)
        self.ven_id: str | None = None
        self.runner: web.AppRunner | None = None

    @property
    def delivered(self) -> list[dict]:
        """The distributions answered with 2xx, oldest first."""
        return [payload for status, _, payload in self.requests if status == 200]

    SERVICE = "EiEvent"  # the VEN service this one plays

    async def start(self) -> str:
        app = web.Application()
        app.add_routes([web.post(f"/ven/{self.SERVICE}", self.handle)])
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        return f"http://127.0.0.1:{self.runner.addresses[0][1]}/ven/"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def handle(self, request: web.Request) -> web.Response:
        message_type, payload = parse_message((await request.read()).decode())
        assert message_type == "oadrDistributeEvent"
        status = self.statuses.pop(0) if self.statuses else 200
        self.requests.append((status, request.headers.get("Content-Type", ""), payload))
        if status != 200:
            return web.Response(status=status, text="not now")
        if self.answer_created and payload.get("events"):
            answer = create_message("oadrCreatedEvent", ven_id=self.ven_id, response={
                "response_code": 200, "response_description": "OK", "request_id": payload["request_id"]},
                event_responses=[{"response_code": 200, "response_description": "OK",
                                  "request_id": payload["request_id"],
                                  "event_id": e["event_descriptor"]["event_id"],
                                  "modification_number": e["event_descriptor"]["modification_number"],
                                  "opt_type": "optIn"} for e in payload["events"]])
        else:
            answer = create_message("oadrResponse", ven_id=self.ven_id, response={
                "response_code": 200, "response_description": "OK", "request_id": payload["request_id"]})
        return web.Response(body=answer.encode(), content_type="application/xml")
