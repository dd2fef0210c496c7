"""The Anthropic Messages API: Anthropic itself, or any engine that serves /v1/messages.

llama-server, vLLM, Ollama and LM Studio all answer /v1/messages, so this backend takes a
URL like the others; only api.anthropic.com insists on a key.
"""

from __future__ import annotations

import functools
import os
from collections.abc import AsyncIterator
from typing import Any

import msgspec

from modelport.backends.http import HTTPClient, health_of
from modelport.backends.model_lists import first_int
from modelport.backends.relay import HTTPRelay, open_relay
from modelport.errors import (
    AuthError,
    ProtocolError,
    Unsupported,
)
from modelport.types import (
    BackendHealth,
    BackendModel,
    Capabilities,
    ChatRequest,
    ChatResponse,
    EmbedRequest,
    EmbedResult,
    Event,
    RelayContext,
    RelayedFormat,
    WireFormat,
)
from modelport.wire import anthropic
from modelport.wire.fields import Target

DEFAULT_URL = "https://api.anthropic.com"
API_KEY_ENV = "ANTHROPIC_API_KEY"
# Claude models take tools, images and (3.7 and later) extended thinking.
CLAUDE = Capabilities(tools=True, vision=True, thinking=True, json_schema=True)


class AnthropicBackend:
    kind = "anthropic"
    formats: frozenset[RelayedFormat] = frozenset({WireFormat.ANTHROPIC})
    transcodes_to = Target.ANTHROPIC

    def __init__(
        self,
        url: str | None = None,
        *,
        api_key: str | None = None,
        name: str | None = None,
        read_timeout: float = 600.0,
    ) -> None:
        self.url = (url or DEFAULT_URL).rstrip("/").removesuffix("/v1")
        self.cloud = self.url == DEFAULT_URL
        self.id = name or ("anthropic" if self.cloud else f"anthropic:{self.url}")
        self._api_key = api_key if api_key is not None else os.environ.get(API_KEY_ENV) or None
        headers = {"anthropic-version": anthropic.ANTHROPIC_VERSION}
        if self._api_key:
            headers["x-api-key"] = self._api_key
        self._http = HTTPClient(
            self.url,
            backend_id=self.id,
            headers=headers,
            connect_timeout=10.0 if self.cloud else 3.0,
            read_timeout=read_timeout,
            secrets=[self._api_key],
        )

    def __repr__(self) -> str:
        return f"AnthropicBackend({self.id!r})"  # never the key

    def _require_key(self) -> None:
        if self.cloud and not self._api_key:
            raise AuthError(f"Anthropic needs an API key: set {API_KEY_ENV}", backend_id=self.id)

    def messages_body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        body = anthropic.encode_request(request)
        body["stream"] = stream
        return body

    async def stream(self, request: ChatRequest) -> AsyncIterator[Event]:
        self._require_key()
        body = self.messages_body(request, stream=True)
        async for event in self._http.stream_events("/v1/messages", body, anthropic.CODEC):
            yield event

    async def chat(self, request: ChatRequest) -> ChatResponse:
        self._require_key()
        body = self.messages_body(request, stream=False)
        return await self._http.answer(
            "/v1/messages", body, anthropic.CODEC, anthropic.decode_response
        )

    async def count_tokens(self, request: ChatRequest) -> int:
        """Input tokens the request would cost, as the engine counts them."""
        self._require_key()
        body = anthropic.encode_request(request)
        body.pop("max_tokens", None)
        decode = functools.partial(anthropic.decode_count_tokens_response, backend_id=self.id)
        return await self._http.answer("/v1/messages/count_tokens", body, anthropic.CODEC, decode)

    def relays(self, format: RelayedFormat, request: ChatRequest) -> bool:
        return format in self.formats

    async def relay(
        self, format: RelayedFormat, body: bytes, context: RelayContext | None = None
    ) -> HTTPRelay:
        if format is not WireFormat.ANTHROPIC:
            raise Unsupported(f"{self.kind} speaks only the anthropic format", backend_id=self.id)
        self._require_key()
        codec = anthropic.CODEC
        path = "/v1" + codec.relay_path
        return await open_relay(
            self._http, codec, path, body, api_key=self._api_key, context=context
        )

    async def embed(self, request: EmbedRequest) -> EmbedResult:
        raise Unsupported("the Anthropic API has no embeddings", backend_id=self.id)

    async def list_models(self) -> list[BackendModel]:
        self._require_key()
        models: list[BackendModel] = []
        after: str | None = None
        for _ in range(20):  # pages of up to 1000; a bound, not a loop on trust
            query = "?limit=1000" + (f"&after_id={after}" if after else "")
            body = await self._http.fetch(
                "GET", "/v1/models" + query, decode_error=anthropic.decode_error, time_limit=30.0
            )
            try:
                page = msgspec.json.decode(body)
                entries = page.get("data") or []
            except (msgspec.DecodeError, AttributeError) as exc:
                raise ProtocolError("the model list is not JSON", backend_id=self.id) from exc
            models.extend(_model(e) for e in entries if isinstance(e, dict))
            if not page.get("has_more") or not page.get("last_id"):
                break
            after = page["last_id"]
        return models

    async def health(self) -> BackendHealth:
        return await health_of(self.list_models)

    async def aclose(self) -> None:
        await self._http.aclose()


def _model(entry: dict[str, Any]) -> BackendModel:
    return BackendModel(
        id=str(entry.get("id", "")),
        context_window=first_int(
            entry, "max_input_tokens", "context_window", "max_model_len", "meta.n_ctx_train"
        ),
        capabilities=CLAUDE,
        native=entry,
    )
