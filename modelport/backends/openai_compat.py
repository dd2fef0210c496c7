"""Any OpenAI-compatible server, steered by a Profile row (see profiles.py)."""

from __future__ import annotations

import functools
import os
from collections.abc import AsyncIterator
from typing import Any

import msgspec

from modelport.backends import relay
from modelport.backends.http import HTTPClient, health_of
from modelport.backends.model_lists import parse_model
from modelport.backends.profiles import PROFILES, Profile
from modelport.backends.relay import HTTPRelay
from modelport.errors import (
    AuthError,
    BackendError,
    ProtocolError,
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
    RelayContext,
    RelayedFormat,
    WireFormat,
)
from modelport.wire import anthropic, openai, relay_codec_for
from modelport.wire.anthropic.relay_fixup import MessagesFixup
from modelport.wire.codec import RelayRequest
from modelport.wire.fields import Target


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
        self.transcodes_to = Target.OPENAI
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
        body = openai.encode_request(
            request,
            template_kwargs=self.profile.thinking_template_kwargs,
            reasoning_history=self.profile.reasoning_history,
        )
        body["stream"] = stream
        if stream:
            body["stream_options"] = {"include_usage": True}
        field = self.profile.max_tokens_field
        if field != "max_tokens" and "max_tokens" in body:
            body[field] = body.pop("max_tokens")
        return body

    async def stream(self, request: ChatRequest) -> AsyncIterator[Event]:
        self._require_key()
        body = self.chat_body(request, stream=True)
        path = self._path("/chat/completions")
        async for event in self._http.stream_events(path, body, openai.CODEC):
            yield event

    async def chat(self, request: ChatRequest) -> ChatResponse:
        self._require_key()
        body = self.chat_body(request, stream=False)
        path = self._path("/chat/completions")
        return await self._http.answer(path, body, openai.CODEC, openai.decode_response)

    async def relay(
        self, format: RelayedFormat, body: bytes, context: RelayContext | None = None
    ) -> HTTPRelay:
        """Forward a client's body unchanged but for what its dialect adds (see the codec's
        `prepare_relay`: usage asked for on OpenAI streams, Anthropic's headers)."""
        return await self.send_relay(format, self.relay_request(format, body, context), context)

    def relay_request(
        self, format: RelayedFormat, body: bytes, context: RelayContext | None = None
    ) -> RelayRequest:
        """The body made ready to relay, no I/O: Unsupported for a format this engine does
        not serve or a field its profile says it drops (`drops`), InvalidRequest for a body
        the dialect refuses. The managed engine asks this before starting its child."""
        if format not in self.formats:
            raise Unsupported(f"{self.kind} does not speak the {format} format", backend_id=self.id)
        self._require_key()
        return relay.prepare(
            self._http,
            relay_codec_for(format),
            body,
            api_key=self._api_key,
            context=context,
            drops=self.profile.drops.get(format),
        )

    async def send_relay(
        self, format: RelayedFormat, request: RelayRequest, context: RelayContext | None = None
    ) -> HTTPRelay:
        """Send a body `relay_request` made ready; `context` is the client's, as given to
        `relay_request` (a fix-up of the engine's quirks reads its stop sequences)."""
        codec = relay_codec_for(format)
        path = self._path(codec.relay_path)
        fixup = self._relay_fixup(format, context)
        return await relay.send(self._http, codec, path, request, fixup=fixup)

    def relays(self, format: RelayedFormat, request: ChatRequest) -> bool:
        """Whether `request` in `format` may pass through: the engine speaks the format and
        honours what the request asks of it there (llama-server ignores a json_schema
        `output_config` on /v1/messages that it honours as `response_format` on Chat
        Completions, so such a request is transcoded)."""
        if format not in self.formats:
            return False
        return not (
            format is WireFormat.ANTHROPIC
            and self.profile.messages_ignores_output_format
            and request.response_format is not None
        )

    def _relay_fixup(
        self, format: RelayedFormat, context: RelayContext | None
    ) -> MessagesFixup | None:
        """The fix-ups the profile's Messages quirks call for; None (no frame rewritten)
        for every other engine and format."""
        profile = self.profile
        if format is not WireFormat.ANTHROPIC or not (
            profile.messages_partial_usage or profile.messages_stop_sequence_quirk
        ):
            return None
        return MessagesFixup(
            complete_usage=profile.messages_partial_usage,
            fix_stop_sequence=profile.messages_stop_sequence_quirk,
            stop_sequences=context.stop_sequences if context is not None else (),
        )

    async def count_tokens(self, request: ChatRequest) -> int:
        """Input tokens as the engine counts them, where it serves Anthropic's count_tokens."""
        if not self.profile.counts_tokens:
            raise Unsupported(f"{self.kind} cannot count tokens", backend_id=self.id)
        body = anthropic.encode_request(request)
        body.pop("max_tokens", None)
        path = self._path("/messages/count_tokens")
        decode = functools.partial(anthropic.decode_count_tokens_response, backend_id=self.id)
        return await self._http.answer(path, body, anthropic.CODEC, decode)

    # -- embeddings --------------------------------------------------------------

    async def embed(self, request: EmbedRequest) -> EmbedResult:
        if self.profile.capabilities.embeddings is False:
            raise Unsupported(f"{self.kind} has no embeddings endpoint", backend_id=self.id)
        if request.tokens and not self.profile.embed_token_ids:
            raise Unsupported(
                f"`input`: {self.profile.description or self.kind} embeds text only, not token ids",
                backend_id=self.id,
                param="input",
            )
        self._require_key()
        body = openai.encode_embed_request(request)
        path = self._path("/embeddings")
        return await self._http.answer(path, body, openai.CODEC, openai.decode_embed_response)

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
        if self.profile.health_path is None:
            return await health_of(self.list_models)
        return await self._http.check_health(self.profile.health_path, openai.CODEC)

    async def aclose(self) -> None:
        await self._http.aclose()
