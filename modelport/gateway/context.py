"""What every handler module of the gateway shares: the per-request values the app's
middleware sets, and how a service `Reply` becomes an aiohttp response."""

from __future__ import annotations

from aiohttp import web

from modelport.service import Reply

REQUEST_ID = web.RequestKey("request_id", str)
KEY_ID = web.RequestKey("key_id", str)


def respond(reply: Reply) -> web.Response:
    headers = {**reply.headers, "Content-Type": reply.content_type}
    return web.Response(status=reply.status, body=reply.body, headers=headers)


def json_body(body: bytes) -> web.Response:
    """A 200 answer whose body the wire layer already encoded."""
    return web.Response(body=body, content_type="application/json")
