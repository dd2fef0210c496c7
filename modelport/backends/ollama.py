"""Ollama through its native API, with its /v1 surfaces for passthrough.

The canonical path speaks /api/chat: it is the only surface that gives tool calls as
objects, thinking when asked, `keep_alive` and Ollama's own `options`. The relay path
hands Ollama clients' bodies to /api/chat and /api/generate, and OpenAI and Anthropic
bodies to Ollama's /v1/chat/completions and /v1/messages, untouched; the /v1 part is
exactly what OpenAICompatBackend does for the "ollama" profile, so this backend delegates
to one rather than repeating it.

Which of those routes exist depends on the version (`formats_for`), which the engine
reports at GET /api/version and `list_models` learns on every refresh.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import msgspec

from modelport.backends.http import HTTPClient
from modelport.backends.openai_compat import OpenAICompatBackend
from modelport.backends.relay import HTTPRelay, open_relay
from modelport.errors import BackendError, ProtocolError, Unsupported
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
    RelayFormat,
    WireFormat,
)
from modelport.wire import ollama, relay_codec_for
from modelport.wire.fields import Target

DEFAULT_URL = "http://127.0.0.1:11434"
DEFAULT_PORT = 11434
# /api/show per model is cheap but not free; a few at a time keeps a big library polite.
SHOW_CONCURRENCY = 8
# Addresses a server binds to that a client cannot dial as such.
_ANY_HOSTS = frozenset({"", "0.0.0.0", "::"})


def url_from_env(value: str | None) -> str:
    """OLLAMA_HOST as Ollama's own client reads it: "host", "host:port", ":port" or a URL.

    Without a scheme a missing port is 11434; with http:// or https:// it is the scheme's.
    """
    value = (value or "").strip().rstrip("/")
    if not value:
        return DEFAULT_URL
    scheme, sep, rest = value.partition("://")
    default = {"http": 80, "https": 443}.get(scheme, DEFAULT_PORT) if sep else DEFAULT_PORT
    if not sep:
        scheme, rest = "http", value
    hostport, _, path = rest.partition("/")
    host, port = _split_host_port(hostport, default)
    if host in _ANY_HOSTS:
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"  # IPv6
    return f"{scheme}://{host}:{port}" + (f"/{path}" if path else "")


def _split_host_port(hostport: str, default: int) -> tuple[str, int]:
    if hostport.startswith("["):  # [v6] or [v6]:port
        host, _, tail = hostport[1:].partition("]")
        port = tail.removeprefix(":")
        return host, int(port) if port.isdigit() else default
    host, sep, port = hostport.rpartition(":")
    if sep and ":" not in host:
        return host, int(port) if port.isdigit() else default
    return hostport, default  # a bare name, or a bare IPv6 address


# The formats every Ollama serves natively (/api/chat and /api/generate, since 0.1.x).
NATIVE_FORMATS = frozenset({WireFormat.OLLAMA, WireFormat.OLLAMA_GENERATE})
# The first release serving each compatibility surface, from ollama/ollama's history:
# /v1/chat/completions came with openai/openai.go (453f572f, first tagged v0.1.24) and
# /v1/messages with the Anthropic middleware (2b2cda7a "api: implement anthropic api",
# first tagged v0.14.0-rc1), /v1/completions with d626b99b "OpenAI: v1/completions
# compatibility" (first tagged v0.1.49-rc4). /api/version itself exists since v0.1.14.
SINCE: tuple[tuple[RelayedFormat, tuple[int, int, int]], ...] = (
    (WireFormat.OPENAI, (0, 1, 24)),
    (RelayFormat.COMPLETIONS, (0, 1, 49)),
    (WireFormat.ANTHROPIC, (0, 14, 0)),
)


def parse_version(version: str | None) -> tuple[int, int, int] | None:
    """ "0.14.0", "v0.14.0-rc1", "0.12.6" -> (major, minor, patch); None when it says nothing:
    absent, unreadable, or 0.0.0 (a build from source, which could be any commit)."""
    if not version:
        return None
    head = version.strip().removeprefix("v").split("-")[0].split("+")[0]
    numbers = head.split(".")
    if len(numbers) != 3 or not all(n.isdigit() for n in numbers):
        return None
    major, minor, patch = (int(n) for n in numbers)
    return None if (major, minor, patch) == (0, 0, 0) else (major, minor, patch)


def formats_for(version: str | None) -> frozenset[RelayedFormat]:
    """What an Ollama of `version` relays. An unknown version relays only its native API:
    every Ollama serves /api/chat, so transcoding always works, while a passthrough to a
    /v1 route it lacks would fail (an old Ollama answers 404 "404 page not found", which
    reads like a missing model)."""
    parsed = parse_version(version)
    if parsed is None:
        return NATIVE_FORMATS
    return NATIVE_FORMATS | {format for format, since in SINCE if parsed >= since}


def _base_url(url: str) -> str:
    """The server root: http://h:11434, http://h:11434/v1 and http://h:11434/api are one."""
    url = url.rstrip("/")
    for tail in ("/v1", "/api"):
        if url.endswith(tail):
            return url[: -len(tail)]
    return url


class OllamaBackend:
    """Chat, embeddings, models and health over Ollama's native /api."""

    kind = "ollama"
    transcodes_to = Target.OLLAMA

    def __init__(
        self,
        url: str | None = None,
        *,
        api_key: str | None = None,
        name: str | None = None,
        connect_timeout: float = 3.0,
        read_timeout: float = 600.0,
    ) -> None:
        raw = url if url else url_from_env(os.environ.get("OLLAMA_HOST"))
        self.url = _base_url(raw)
        self.id = name or f"{self.kind}:{self.url}"
        # What GET /api/version last said (None until then, or when it cannot say).
        self.version: str | None = None
        self.formats: frozenset[RelayedFormat] = formats_for(None)
        # Ollama needs no key locally; one is sent when it sits behind a proxy or a cloud.
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = HTTPClient(
            self.url,
            backend_id=self.id,
            headers=headers,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            secrets=[api_key],
        )
        self._compat = OpenAICompatBackend(
            "ollama",
            self.url,
            api_key=api_key,
            name=self.id,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
        )

    def __repr__(self) -> str:
        return f"OllamaBackend({self.id!r})"  # never the key

    # -- chat --------------------------------------------------------------------

    async def stream(self, request: ChatRequest) -> AsyncIterator[Event]:
        body = ollama.encode_chat_request(request, stream=True)  # Unsupported before I/O
        async for event in self._http.stream_events("/api/chat", body, ollama.ENGINE_CODEC):
            yield event

    async def chat(self, request: ChatRequest) -> ChatResponse:
        body = ollama.encode_chat_request(request, stream=False)
        codec = ollama.ENGINE_CODEC
        return await self._http.answer("/api/chat", body, codec, ollama.decode_chat_response)

    def relays(self, format: RelayedFormat, request: ChatRequest) -> bool:
        return format in self.formats

    async def relay(
        self, format: RelayedFormat, body: bytes, context: RelayContext | None = None
    ) -> HTTPRelay:
        """Passthrough on /api/chat or /api/generate, or on Ollama's /v1/chat/completions
        /v1/messages or /v1/completions."""
        if format in NATIVE_FORMATS:
            codec = relay_codec_for(format)
            return await open_relay(
                self._http, codec, codec.relay_path, body, api_key=None, context=context
            )
        return await self._compat.relay(format, body, context)

    # -- embeddings --------------------------------------------------------------

    async def count_tokens(self, request: ChatRequest) -> int:
        raise Unsupported(f"{self.kind} cannot count tokens", backend_id=self.id)

    async def embed(self, request: EmbedRequest) -> EmbedResult:
        body = ollama.encode_embed_request(request)
        codec = ollama.ENGINE_CODEC
        return await self._http.answer("/api/embed", body, codec, ollama.decode_embed_response)

    # -- models and health ---------------------------------------------------------

    async def list_models(self) -> list[BackendModel]:
        """Tags for the names, /api/show for context and capabilities, /api/ps for loaded."""
        tags, _ = await asyncio.gather(self._get_json("GET", "/api/tags"), self._learn_version())
        entries = [e for e in tags.get("models") or [] if isinstance(e, dict) and _name(e)]
        limit = asyncio.Semaphore(SHOW_CONCURRENCY)
        shows, running = await asyncio.gather(
            asyncio.gather(*(self._show(_name(e), limit) for e in entries)),
            self._running(),
        )
        return [_model(e, show, running) for e, show in zip(entries, shows, strict=True)]

    async def _learn_version(self) -> None:
        """GET /api/version, and the formats relayed from then on (an Ollama upgraded in
        place is seen at the next refresh); an engine that cannot say is taken as unknown."""
        try:
            reported = (await self._get_json("GET", "/api/version")).get("version")
        except BackendError:
            reported = None
        self.version = reported if isinstance(reported, str) else None
        self.formats = formats_for(self.version)

    async def _get_json(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        raw = await self._http.fetch(
            method, path, body=body, decode_error=ollama.decode_error, time_limit=30.0
        )
        try:
            parsed = msgspec.json.decode(raw)
        except msgspec.DecodeError as exc:
            raise ProtocolError(f"{path} is not JSON", backend_id=self.id, raw=raw) from exc
        if not isinstance(parsed, dict):
            raise ProtocolError(f"{path} is not a JSON object", backend_id=self.id, raw=raw)
        return parsed

    async def _show(self, model: str, limit: asyncio.Semaphore) -> dict[str, Any] | None:
        """One model's details; a model that vanished meanwhile is listed without them."""
        async with limit:
            try:
                return await self._get_json("POST", "/api/show", {"model": model})
            except BackendError:
                return None

    async def _running(self) -> dict[str, int | None] | None:
        """Loaded model name -> context allocated; None when /api/ps cannot say."""
        try:
            ps = await self._get_json("GET", "/api/ps")
        except BackendError:
            return None
        running: dict[str, int | None] = {}
        for entry in ps.get("models") or []:
            if isinstance(entry, dict) and _name(entry):
                context = entry.get("context_length")
                running[_name(entry)] = context if _positive(context) else None
        return running

    async def health(self) -> BackendHealth:
        """GET / answers "Ollama is running" as soon as the server is up."""
        return await self._http.check_health("/", ollama.ENGINE_CODEC)

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._compat.aclose()


def _name(entry: dict[str, Any]) -> str:
    value = entry.get("name") or entry.get("model")
    return value if isinstance(value, str) else ""


def _positive(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _model(
    entry: dict[str, Any], show: dict[str, Any] | None, running: dict[str, int | None] | None
) -> BackendModel:
    """The runtime context from /api/ps beats the trained one from /api/show."""
    name = _name(entry)
    context = ollama.context_window_from_show(show or {})
    if running and running.get(name):
        context = running[name]
    capabilities = ollama.capabilities_from_show(show or {})
    if capabilities.embeddings is False:
        # /api/show's "embedding" marks an embedding model, but /api/embed asks nothing of
        # the model (server/routes.go EmbedHandler schedules it with no capability): a
        # completion model may embed too, so the gateway lets such a request through.
        capabilities = capabilities.with_overrides({"embeddings": None})
    return BackendModel(
        id=name,
        context_window=context,
        capabilities=capabilities,
        loaded=None if running is None else name in running,
        native=entry,
    )
