"""Ollama's API besides chat and generate: `/`, /api/version, /api/tags, /api/show,
/api/ps, /api/embed and /api/embeddings, answered as Ollama answers them.

Where the answers come from: the model routes read the router (every model once, as
`Router.models` owns it, plus aliases, which `Router.describe` resolves like a request
would); the embeddings routes are the service's embeddings path in Ollama's shapes (the
one candidate loop, so every engine that embeds serves them). The JSON is the wire
layer's (`wire.ollama.models`, `wire.ollama.embeddings`). Failures are raised: the app's
`errors_in_format` middleware writes them in Ollama's dialect (`{"error": "..."}`).
"""

from __future__ import annotations

import time

from aiohttp import web

from modelport.gateway.context import KEY_ID, REQUEST_ID, json_body, respond
from modelport.router import Router
from modelport.service import Service
from modelport.service.candidates import not_found
from modelport.service.embeddings import OLLAMA_EMBED, OLLAMA_EMBEDDINGS, EmbedDialect
from modelport.types import BackendModel
from modelport.wire.ollama import models as ollama_models


class OllamaRoutes:
    """The handlers, over one service (its router for the model routes)."""

    def __init__(self, service: Service) -> None:
        self.service = service

    @property
    def router(self) -> Router:
        return self.service.router

    def add_to(self, app: web.Application) -> None:
        # GET routes answer HEAD too, as Ollama's `/`, /api/version and /api/tags do.
        app.router.add_get("/", self.root)
        app.router.add_get("/api/version", self.version)
        app.router.add_get("/api/tags", self.tags)
        app.router.add_get("/api/ps", self.ps, allow_head=False)  # Ollama has no HEAD here
        app.router.add_post("/api/show", self.show)
        app.router.add_post("/api/embed", self.embed)
        app.router.add_post("/api/embeddings", self.embeddings)

    async def root(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text=ollama_models.RUNNING)  # text/plain; charset=utf-8

    async def version(self, request: web.Request) -> web.StreamResponse:
        return json_body(ollama_models.encode_version())

    async def tags(self, request: web.Request) -> web.StreamResponse:
        """Every model, then every alias that names one (under the alias's name)."""
        entries = [ollama_models.tag_entry(m.id, m) for _, m in self.router.models()]
        for alias in self.router.aliases:
            found = self.router.describe(alias)
            if found is not None:
                entries.append(ollama_models.tag_entry(alias, found[1]))
        return json_body(ollama_models.encode_tags(entries))

    async def show(self, request: web.Request) -> web.StreamResponse:
        name = ollama_models.decode_show_request(await request.read())
        return json_body(ollama_models.encode_show(name, self._describe(name)))

    async def ps(self, request: web.Request) -> web.StreamResponse:
        """The models an engine holds in memory now: those it says are loaded, and on a
        ready local engine that cannot say (llama-server, vLLM), every model it serves."""
        now = time.time()
        entries = [
            ollama_models.ps_entry(model, now=now)
            for upstream, model in self.router.models()
            if model.loaded or (model.loaded is None and upstream.ready and upstream.local)
        ]
        return json_body(ollama_models.encode_ps(entries))

    async def embed(self, request: web.Request) -> web.StreamResponse:
        return await self._embeddings(request, OLLAMA_EMBED)

    async def embeddings(self, request: web.Request) -> web.StreamResponse:
        return await self._embeddings(request, OLLAMA_EMBEDDINGS)

    async def _embeddings(self, request: web.Request, dialect: EmbedDialect) -> web.Response:
        reply = await self.service.embeddings(
            await request.read(),
            dialect=dialect,
            request_id=request[REQUEST_ID],
            key_id=request[KEY_ID],
        )
        return respond(reply)

    def _describe(self, name: str) -> BackendModel:
        found = self.router.describe(name)
        if found is None:
            raise not_found(self.router, name)
        return found[1]
