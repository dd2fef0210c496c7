"""An engine that repeats the key it is called with everywhere it can (issue 11, point 4).

Real engines do this in pieces: OpenAI's 401 says "Incorrect API key provided: sk-...";
vLLM's and llama-server's auth failures, proxies' health pages and debugging middleware
repeat headers; a misconfigured reverse proxy echoes `Authorization` back as a header.
This fake does all of it at once, on top of a FakeEngine of any kind (its wire shapes are
that kind's own):

- every error body: `Reply.error_message` is set by the caller to hold the key;
- every stream error frame: the same message through the kind's error frame;
- every answer's headers: `X-Echo-Authorization`, `WWW-Authenticate` and a Content-Type
  parameter carry the key as received;
- the health probe: while `health_fails`, the health route answers 503 whose body quotes
  the Authorization (or x-api-key) header it got.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .engine import FakeEngine


def presented_key(request: web.Request) -> str:
    """What the caller authenticated with, as sent (Bearer prefix included)."""
    return request.headers.get("Authorization") or request.headers.get("x-api-key") or ""


# Each kind's health route (catalog.py); kinds without one are probed by their model list.
HEALTH_PATHS = {"vllm": "/health", "llamacpp": "/health", "localai": "/readyz", "ollama": "/"}


class EchoingEngine(FakeEngine):
    def __init__(self, kind: str, **kwargs: Any) -> None:
        super().__init__(kind, **kwargs)
        self.health_fails = False
        probes = [HEALTH_PATHS[kind]] if kind in HEALTH_PATHS else []
        probes += [path for method, path in self._routes if path.endswith("/models")]
        for path in probes:
            route = self._routes[("GET", path)]
            self.route("GET", path, self._probe(route.handler), group=route.group, public=True)

    def _probe(self, answer: Any) -> Any:
        """The route's own answer, or while `health_fails` a 503 quoting the caller's key."""

        async def handler(request: web.Request, body: Any) -> web.StreamResponse:
            if not self.health_fails:
                return await answer(request, body)
            given = presented_key(request)
            message = f"health check failed; request had Authorization: {given}"
            return self.error("openai", 503, "server", message)

        return handler

    async def on_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        given = presented_key(request)
        if not given:
            return
        response.headers["X-Echo-Authorization"] = given
        response.headers["WWW-Authenticate"] = f'Bearer realm="{given}"'
        content_type = response.headers.get("Content-Type")
        if content_type:
            response.headers["Content-Type"] = f'{content_type}; echo="{given}"'
