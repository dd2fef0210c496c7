"""Any OpenAI-compatible server, steered by a Profile row (see profiles.py)."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import msgspec

from modelport.backends.http import Framed, HTTPClient, stream_events
from modelport.backends.profiles import PROFILES, Profile, parse_model
from modelport.backends.relay import HTTPRelay
from modelport.errors import (
    AuthError,
    BackendError,
    InvalidRequest,
    ProtocolError,
    TimedOut,
    Unreachable,
    Unsupported,
)
from modelport.types import (
    BackendHealth,
    BackendModel,
    ChatRequest,
    ChatResponse,
    EmbedRequest,
    EmbedResult,
    Event,
    WireFormat,
)
from modelport.wire import anthropic, codec_for, openai

T = TypeVar("T")

_RELAY_PATHS = {
    WireFormat.OPENAI: "/chat/completions",
    WireFormat.ANTHROPIC: "/messages",
    WireFormat.RESPONSES: "/responses",
}


def base_url_for(url: str, profile: Profile) -> str:
    """Accept the server root or the API base: http://h:8000 and http://h:8000/v1 are one."""
    url = url.rstrip("/")
    if url.endswith(profile.api_base):
        url = url[: -len(profile.api_base)]
    return url


class OpenAICompatBackend:
    """Chat, embeddings, models and health over an engine's OpenAI-compatible API."""

    def __init__(
        self,
        profile: Profile | str = "openai-compatible",
        url: str | None = None,
        *,
        api_key: str | None = None,
        name: str | None = None,
        connect_timeout: float | None = None,
        read_timeout: float = 600.0,
    ) -> None:
        self.profile = PROFILES[profile] if isinstance(profile, str) else profile
        self.kind = self.profile.name
        self.url = base_url_for(url or self.profile.default_url, self.profile)
        self.id = name or (self.kind if self.profile.cloud else f"{self.kind}:{self.url}")
        self.formats = self.profile.relay_formats
        self._api_key = api_key if api_key is not None else self._key_from_env()
        headers = dict(self.profile.headers)
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        self._http = HTTPClient(
            self.url,
            backend_id=self.id,
            headers=headers,
            connect_timeout=connect_timeout or (10.0 if self.profile.cloud else 3.0),
            read_timeout=read_timeout,
            secrets=[self._api_key],
        )

    def __repr__(self) -> str:
        return f"OpenAICompatBackend({self.id!r})"  # never the key

    def _key_from_env(self) -> str | None:
        env = self.profile.api_key_env
        return os.environ.get(env) or None if env else None

    def _require_key(self) -> None:
        if self.profile.key_required and not self._api_key:
            raise AuthError(
                f"{self.profile.description or self.kind} needs an API key: "
                f"set {self.profile.api_key_env}",
                backend_id=self.id,
            )

    def _path(self, tail: str) -> str:
        return self.profile.api_base + tail

    # -- chat --------------------------------------------------------------------

    def chat_body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        """The JSON body this engine gets for a canonical request."""
        body = openai.encode_request(request)
        body["stream"] = stream
        if stream:
            body["stream_options"] = {"include_usage": True}
        field = self.profile.max_tokens_field
        if field != "max_tokens" and "max_tokens" in body:
            body[field] = body.pop("max_tokens")
        return body

    async def stream(self, request: ChatRequest) -> AsyncIterator[Event]:
        self._require_key()
        response = await self._http.open(
            "POST",
            self._path("/chat/completions"),
            body=self.chat_body(request, stream=True),
            decode_error=openai.decode_error,
        )
        codec = openai.CODEC
        framed = Framed(codec.framer(), codec.stream_decoder(backend_id=self.id))
        async for event in stream_events(self._http, response, framed):
            yield event

    async def chat(self, request: ChatRequest) -> ChatResponse:
        self._require_key()
        body = await self._http.fetch(
            "POST",
            self._path("/chat/completions"),
            body=self.chat_body(request, stream=False),
            decode_error=openai.decode_error,
        )
        return _stamped(openai.decode_response, body, self._http)

    async def relay(self, format: WireFormat, body: bytes) -> HTTPRelay:
        """Forward a client's body unchanged but for asking for usage when it streams."""
        if format not in self.formats:
            raise Unsupported(f"{self.kind} does not speak the {format} format", backend_id=self.id)
        self._require_key()
        try:
            payload = msgspec.json.decode(body)
        except msgspec.DecodeError as exc:
            raise InvalidRequest(f"body is not valid JSON: {exc}", backend_id=self.id) from exc
        if not isinstance(payload, dict):
            raise InvalidRequest("body must be a JSON object", backend_id=self.id)
        stream = payload.get("stream") is True
        added_usage = False  # asked for usage for metering only: keep its chunk from the client
        if format is WireFormat.OPENAI and stream:
            options = payload.get("stream_options") or {}
            if options.get("include_usage") is not True:
                payload["stream_options"] = {**options, "include_usage": True}
                body = msgspec.json.encode(payload)
                added_usage = True
        headers = {}
        if format is WireFormat.ANTHROPIC:
            headers = {"anthropic-version": anthropic.ANTHROPIC_VERSION}
            if self._api_key:
                headers["x-api-key"] = self._api_key
        response = await self._http.open(
            "POST",
            self._path(_RELAY_PATHS[format]),
            raw=body,
            headers=headers,
            decode_error=codec_for(format).decode_error,
        )
        return HTTPRelay(
            response,
            format,
            stream=stream,
            backend_id=self.id,
            drop_usage_chunk=added_usage,
            scrub=self._http.scrub,
        )

    async def count_tokens(self, request: ChatRequest) -> int:
        """Input tokens as the engine counts them, where it serves Anthropic's count_tokens."""
        if not self.profile.counts_tokens:
            raise Unsupported(f"{self.kind} cannot count tokens", backend_id=self.id)
        body = anthropic.encode_request(request)
        body.pop("max_tokens", None)
        answer = await self._http.fetch(
            "POST",
            self._path("/messages/count_tokens"),
            body=body,
            decode_error=anthropic.decode_error,
        )
        return anthropic.decode_count_tokens_response(answer, backend_id=self.id)

    # -- embeddings --------------------------------------------------------------

    async def embed(self, request: EmbedRequest) -> EmbedResult:
        if not self.profile.capabilities.embeddings:
            raise Unsupported(f"{self.kind} has no embeddings endpoint", backend_id=self.id)
        self._require_key()
        body = await self._http.fetch(
            "POST",
            self._path("/embeddings"),
            body=openai.encode_embed_request(request),
            decode_error=openai.decode_error,
        )
        return _stamped(openai.decode_embed_response, body, self._http)

    # -- models and health ---------------------------------------------------------

    async def list_models(self) -> list[BackendModel]:
        self._require_key()
        path = self.profile.models_path or self._path("/models")
        body = await self._http.fetch(
            "GET",
            path + self.profile.models_query,
            decode_error=openai.decode_error,
            time_limit=30.0,
        )
        try:
            entries = msgspec.json.decode(body).get("data") or []
        except (msgspec.DecodeError, AttributeError) as exc:
            raise ProtocolError("the model list is not JSON", backend_id=self.id, raw=body) from exc
        models = [parse_model(e, self.profile) for e in entries if isinstance(e, dict)]
        if self.profile.props_path:
            models = await self._with_props(models)
        return models

    async def _with_props(self, models: list[BackendModel]) -> list[BackendModel]:
        """llama-server's `/props`: the context actually allocated per request, which beats
        the trained one, and whether a vision projector is loaded."""
        assert self.profile.props_path
        try:
            status, body, _ = await self._http.probe(self.profile.props_path)
            props = msgspec.json.decode(body) if status == 200 else {}
        except (BackendError, msgspec.DecodeError):
            return models
        if not isinstance(props, dict):
            return models
        n_ctx = (props.get("default_generation_settings") or {}).get("n_ctx")
        vision = (props.get("modalities") or {}).get("vision")
        updated = []
        for model in models:
            changes: dict[str, Any] = {}
            if isinstance(n_ctx, int) and n_ctx > 0:
                changes["context_window"] = n_ctx
            if isinstance(vision, bool):
                caps = msgspec.structs.replace(model.capabilities, vision=vision)
                changes["capabilities"] = caps
            updated.append(msgspec.structs.replace(model, **changes))
        return updated

    async def health(self) -> BackendHealth:
        started = time.perf_counter()
        try:
            if self.profile.health_path is None:
                await self.list_models()
                status, body = 200, b""
            else:
                status, body, _ = await self._http.probe(self.profile.health_path)
        except BackendError as exc:
            alive = not isinstance(exc, Unreachable | TimedOut)
            return BackendHealth(alive=alive, ready=False, last_error=exc.message)
        latency = (time.perf_counter() - started) * 1000
        if 200 <= status < 300:
            return BackendHealth(alive=True, ready=True, latency_ms=latency)
        error = openai.decode_error(status, body, backend_id=self.id)
        return BackendHealth(alive=True, ready=False, latency_ms=latency, last_error=error.message)

    async def aclose(self) -> None:
        await self._http.aclose()


def _stamped(decode: Callable[[bytes], T], body: bytes, http: HTTPClient) -> T:
    """Decode an engine's answer; an error it carries names its backend and holds no key."""
    try:
        return decode(body)
    except BackendError as exc:
        exc.backend_id = exc.backend_id or http.backend_id
        raise http.scrub(exc) from None
