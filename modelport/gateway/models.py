"""GET /v1/models and /v1/models/{model_id}, in the shape of the client that asks.

Anthropic's SDKs send `anthropic-version` on every request; a request that carries it gets
Anthropic's shapes (ModelInfo, cursor pages) and, on failure, Anthropic's error body. Every
other client gets OpenAI's. The data is the router's: each model once, owned by the
upstream a request for it would try first (`Router.models`), and aliases. The JSON is the
wire layer's (`wire.openai.models`, `wire.anthropic.models`); this module only picks it.

Failures are raised, not written here: the app's `errors_in_format` middleware writes a
BackendError in the request's dialect (`dialect_of`, which knows the header rule too).
"""

from __future__ import annotations

from aiohttp import web

from modelport.gateway.context import json_body
from modelport.router import Router, Upstream
from modelport.service.candidates import not_found
from modelport.types import BackendModel
from modelport.wire.anthropic import models as anthropic_models
from modelport.wire.openai import models as openai_models


def wants_anthropic(request: web.Request) -> bool:
    """Anthropic's SDKs always send `anthropic-version`; nobody else does."""
    return "anthropic-version" in request.headers


class ModelRoutes:
    """The two handlers, over one router."""

    def __init__(self, router: Router) -> None:
        self.router = router

    def add_to(self, app: web.Application) -> None:
        app.router.add_get("/v1/models", self.list)
        # Ids may hold "/" (`upstream/model`, `Qwen/Qwen3-8B`): the rest of the path is the id.
        app.router.add_get("/v1/models/{model_id:.+}", self.retrieve)

    async def list(self, request: web.Request) -> web.StreamResponse:
        if wants_anthropic(request):
            return json_body(self._anthropic_page(request))
        objects = [
            openai_models.model_object(
                model, owned_by=upstream.name, backend=upstream.backend.id, ready=upstream.ready
            )
            for upstream, model in self.router.models()
        ]
        aliases = self.router.aliases.items()
        objects += [openai_models.alias_object(alias, targets) for alias, targets in aliases]
        return json_body(openai_models.encode_model_list(objects))

    def _anthropic_page(self, request: web.Request) -> bytes:
        """Anthropic lists models, not aliases (its aliases resolve on retrieve only)."""
        query = anthropic_models.decode_page_query(request.query)
        models = [model for _, model in self.router.models()]
        page = anthropic_models.page([m.id for m in models], query)
        infos = [anthropic_models.model_info(m) for m in models[page.start : page.end]]
        return anthropic_models.encode_model_page(infos, has_more=page.has_more)

    async def retrieve(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["model_id"]
        if wants_anthropic(request):
            # Anthropic resolves an alias to the model it names: the answer's id is that model's.
            _, model = self._describe(name)
            return json_body(anthropic_models.encode_model_info(anthropic_models.model_info(model)))
        targets = self.router.aliases.get(name)
        if targets is not None:
            return json_body(openai_models.encode_model(openai_models.alias_object(name, targets)))
        upstream, model = self._describe(name)
        obj = openai_models.model_object(
            model, owned_by=upstream.name, backend=upstream.backend.id, ready=upstream.ready
        )
        obj["id"] = name  # an `upstream/model` name is answered by the name asked for
        return json_body(openai_models.encode_model(obj))

    def _describe(self, name: str) -> tuple[Upstream, BackendModel]:
        found = self.router.describe(name)
        if found is None:
            raise not_found(self.router, name)
        return found
