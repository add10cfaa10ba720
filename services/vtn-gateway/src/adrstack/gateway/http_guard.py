"""aiohttp middleware in front of openleadr's handlers: size, media type, hostile XML, crashes.

openleadr reads the body itself and catches every exception as a bare 500, so the
checks that need other status codes (413/415/400) must run before it does.
"""

from __future__ import annotations

import logging

from aiohttp import web

from .xml_guard import HostileXml, check_xml

log = logging.getLogger(__name__)

XML_TYPES = ("application/xml", "text/xml")


def _plain(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text + "\n", content_type="text/plain")


def guard_middleware(max_body_bytes: int, guarded_prefix: str):
    @web.middleware
    async def guard(request: web.Request, handler):
        try:
            if request.method == "POST" and request.path.startswith(guarded_prefix):
                content_type = request.headers.get("Content-Type", "")
                mime, _, params = content_type.partition(";")
                mime = mime.strip().lower()
                if mime not in XML_TYPES:
                    return _plain(415, f"Content-Type must be application/xml or text/xml, not {content_type!r}")
                if request.content_length is not None and request.content_length > max_body_bytes:
                    return _plain(413, f"body larger than {max_body_bytes} bytes")
                if mime != "application/xml":
                    # openleadr only accepts application/xml; text/xml is the same thing to us.
                    headers = request.headers.copy()
                    headers["Content-Type"] = "application/xml" + (f";{params}" if params else "")
                    request = request.clone(headers=headers)
                try:
                    # read() enforces the app's client_max_size also for chunked bodies, and caches
                    # the bytes so openleadr's own read() gets them.
                    body = await request.read()
                except web.HTTPRequestEntityTooLarge:
                    return _plain(413, f"body larger than {max_body_bytes} bytes")
                try:
                    check_xml(body)
                except HostileXml as e:
                    log.warning("refused XML from %s: %s", request.remote, e)
                    return _plain(400, str(e))
            return await handler(request)
        except web.HTTPException:
            raise
        except Exception:
            log.exception("unhandled error serving %s %s", request.method, request.path)
            return _plain(500, "internal error")

    return guard
