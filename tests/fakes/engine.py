"""FakeEngine: a real aiohttp server on 127.0.0.1 that speaks one engine's wire.

One catch-all handler records every request, then routes it through a table built from the
engine's profile (profiles.py) and its info routes (catalog.py). Chat requests pop a scripted
`Reply`; the wire writers (openai_wire, responses_wire, anthropic_wire, ollama_wire) turn it
into frames, and `_play` sends them with the reply's faults (delay, mid-stream error, drop, hang;
the fault matrix's stalls, garbage, clean ends and kills are in faults.py).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json as _json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from . import (
    anthropic_wire,
    catalog,
    completions_wire,
    errors,
    faults,
    ollama_wire,
    openai_wire,
    responses_wire,
)
from .core import (
    DEFAULT_ERROR_MESSAGE,
    Headers,
    Recorded,
    Reply,
    dumps,
    estimate_prompt_tokens,
    text_only,
)
from .profiles import PROFILES, Profile

Handler = Callable[[web.Request, Any], Awaitable[web.StreamResponse]]
Frame = tuple[bytes, bool]

KINDS = tuple(PROFILES)
# A current Ollama release (ollama/ollama tags); tests of older ones pass `version=`.
OLLAMA_VERSION = "0.32.0"
# ollama/ollama 2b2cda7a "api: implement anthropic api", first tagged v0.14.0-rc1.
OLLAMA_MESSAGES_SINCE = (0, 14, 0)


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(n) for n in version.split("-")[0].split("."))


@dataclass(frozen=True)
class Route:
    handler: Handler
    group: str = "info"  # chat | embed | health | info
    wire: str | None = None  # error style family for this route: openai | anthropic | ollama
    public: bool = False  # no key needed even when api_key is set


class FakeEngine:
    def __init__(
        self,
        kind: str,
        *,
        models: list[str] | None = None,
        api_key: str | None = None,
        context_window: int = 4096,
        loading: bool = False,
        not_loaded: list[str] | None = None,
        train_context: int | None = None,
        version: str | None = None,
    ) -> None:
        if kind not in PROFILES:
            raise ValueError(f"unknown kind {kind!r}; one of {', '.join(KINDS)}")
        self.kind = kind
        self.profile: Profile = PROFILES[kind]
        names = list(models) if models is not None else list(self.profile.default_models)
        self.models = [self._canonical(m) for m in names]
        self.not_loaded = {self._canonical(m) for m in not_loaded or ()}
        self.api_key = api_key
        self.context_window = context_window
        self.train_context = train_context if train_context is not None else context_window * 8
        self.loading = loading
        #: what GET /api/version reports (Ollama); below 0.14.0 there is no /v1/messages
        self.version = version or OLLAMA_VERSION
        self.replies: collections.deque[Reply] = collections.deque()
        self.default_reply = Reply()
        #: picks the reply from the request itself (e.g. `turns.tool_round_trip`); None = the
        #: queue. Checked first; when it returns None the queue and default_reply answer.
        self.reply_for: Callable[[Recorded], Reply | None] | None = None
        self.requests: list[Recorded] = []
        self.disconnects = 0
        #: how long after a streamed answer an engine that closes then (llama-server) keeps
        #: the connection, unread, before it closes: at once as on an idle machine, or later
        #: (its HTTP thread not yet run) to make certain the next request meets the close
        self.close_after_stream_s = 0.0
        #: the fake's own stop() after a `kill_after_chunks` fault, to await in tests
        self.killed: asyncio.Future[None] | None = None
        self.url = ""
        self._routes: dict[tuple[str, str], Route] = {}
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self._disconnected = asyncio.Event()
        self._build_routes()

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> str:
        if self._runner is not None:
            return self.url
        self._closing = asyncio.Event()
        self._disconnected = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        app.on_response_prepare.append(self.on_prepare)
        app.on_response_prepare.append(self._keep_alive_header)
        self._runner = web.AppRunner(
            app, handler_cancellation=True, shutdown_timeout=0.5, access_log=None
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def on_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        """Every answer's headers, just before they go out (streams included); a subclass may
        add to them (echo.py's engine repeats the caller's key there)."""

    async def _keep_alive_header(self, request: web.Request, response: web.StreamResponse) -> None:
        # cpp-httplib writes it on every answer (llama-server b11434, docs/wire.md), streamed
        # ones included, though it closes the connection after those.
        if self.profile.closes_after_stream:
            response.headers["Keep-Alive"] = "timeout=5, max=100"

    async def _end_stream(self, resp: web.StreamResponse) -> web.StreamResponse:
        """The last chunk of a streamed answer; then, for an engine that does it, the close
        its headers did not announce (the FIN follows the chunked body's terminator)."""
        await resp.write_eof()
        if self.profile.closes_after_stream:
            resp.force_close()  # after the headers went out: it only ends the connection
            # A request arriving meanwhile is never handled: aiohttp runs one at a time
            # and closes with it unread, as llama-server's ended keep-alive loop does.
            await asyncio.sleep(self.close_after_stream_s)
        return resp

    async def stop(self) -> None:
        if self._runner is None:
            return
        self._closing.set()  # releases hanging handlers
        runner, self._runner = self._runner, None
        await runner.cleanup()

    async def __aenter__(self) -> FakeEngine:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- conveniences for tests ----------------------------------------------------------

    @property
    def v1(self) -> str:
        """Base URL of the OpenAI-compatible surface (…/v1, or …/api/v1 for OpenRouter/Venice)."""
        return self.url + (self.profile.openai_prefix or "/v1")

    @property
    def last(self) -> Recorded:
        return self.requests[-1]

    def requests_to(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]

    async def hang(self) -> None:
        """Wait until stop() (or the client going away cancels the handler)."""
        await self._closing.wait()

    async def wait_disconnects(self, n: int = 1, within: float = 5.0) -> int:
        """Wait (up to `within` s) until `n` chat streams saw their client go away; the count."""

        async def reached() -> None:
            while self.disconnects < n:
                self._disconnected.clear()
                await self._disconnected.wait()

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(reached(), within)
        return self.disconnects

    # -- routing -----------------------------------------------------------------------

    def route(self, method: str, path: str, handler: Handler, **kw: Any) -> None:
        self._routes[(method, path)] = Route(handler, **kw)

    def _build_routes(self) -> None:
        p = self.profile
        table: list[tuple[str, str, Handler, str, str]] = []  # method, path, handler, group, wire
        if p.openai_prefix is not None:
            for prefix in (p.openai_prefix, *p.openai_aliases):
                table += [
                    ("POST", f"{prefix}/chat/completions", self._openai_chat, "chat", "openai"),
                    ("POST", f"{prefix}/embeddings", self._openai_embeddings, "embed", "openai"),
                    ("GET", f"{prefix}/models", self._openai_models, "info", "openai"),
                ]
                if p.completions:
                    table.append(
                        ("POST", f"{prefix}/completions", self._completions, "chat", "openai")
                    )
        if p.responses:
            path = f"{p.openai_prefix or '/v1'}/responses"
            table.append(("POST", path, self._responses, "chat", "openai"))
        old_ollama = self.kind == "ollama" and (
            _version_tuple(self.version) < OLLAMA_MESSAGES_SINCE
        )
        if p.anthropic and not old_ollama:
            table.append(("POST", "/v1/messages", self._anthropic_messages, "chat", "anthropic"))
        if p.count_tokens:
            table.append(
                ("POST", "/v1/messages/count_tokens", self._count_tokens, "chat", "anthropic")
            )
        if self.kind == "ollama":
            table.append(("POST", "/api/chat", self._ollama_chat, "chat", "ollama"))
            table.append(("POST", "/api/generate", self._ollama_generate, "chat", "ollama"))
            table.append(("POST", "/api/embed", self._ollama_embed, "embed", "ollama"))
        for method, path, handler, group, wire in table:
            self.route(method, path, handler, group=group, wire=wire)
        catalog.install(self)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        parsed: Any = None
        if raw:
            try:
                parsed = _json.loads(raw)
            except ValueError:
                parsed = None
        self.requests.append(
            Recorded(
                request.method,
                request.path,
                Headers(request.headers),
                parsed,
                dict(request.query),
                raw,
            )
        )
        method = "GET" if request.method == "HEAD" else request.method
        route = self._routes.get((method, request.path))
        if route is None:
            return catalog.unknown_route(self, request)
        if self.loading and (self.profile.loading_blocks_all or route.group in ("chat", "embed")):
            return self.error(route.wire, 529 if self.kind == "anthropic" else 503, "loading")
        denied = self._check_auth(request, route)
        if denied is not None:
            return denied
        if raw and parsed is None and route.group in ("chat", "embed"):
            return self.error(route.wire, 400, "invalid", "Invalid JSON body")
        return await route.handler(request, parsed)

    def _check_auth(self, request: web.Request, route: Route) -> web.StreamResponse | None:
        if self.kind == "anthropic":
            return self._check_anthropic_headers(request)
        if not self.api_key or route.public:
            return None
        if self._key_ok(request, route):
            return None
        return self.error(route.wire, 401, "auth")

    def _key_ok(self, request: web.Request, route: Route) -> bool:
        key = self.api_key
        auth = request.headers.get("Authorization", "")
        if self.kind == "llamacpp":  # Authorization, else X-Api-Key; "Bearer " optional
            given = auth or request.headers.get("X-Api-Key", "")
            return given.removeprefix("Bearer ") == key
        if auth == f"Bearer {key}":
            return True
        accepts_x_key = "x-api-key" in self.profile.auth or route.wire == "anthropic"
        return accepts_x_key and request.headers.get("x-api-key") == key

    def _check_anthropic_headers(self, request: web.Request) -> web.StreamResponse | None:
        if self.api_key:
            given = request.headers.get("x-api-key")
            if given is None:
                return self.error("anthropic", 401, "auth", "x-api-key header is required")
            if given != self.api_key:
                return self.error("anthropic", 401, "auth")
        if "anthropic-version" not in request.headers:
            return self.error("anthropic", 400, "invalid", "anthropic-version: header is required")
        return None

    # -- errors --------------------------------------------------------------------------

    def style(self, wire: str | None) -> str:
        styles = self.profile.errors
        if wire and wire in styles:
            return styles[wire]
        return styles.get("openai") or styles.get("anthropic") or "openai"

    def error(
        self,
        wire: str | None,
        status: int,
        kind: str,
        message: str | None = None,
        *,
        model: str = "",
        n_prompt: int = 0,
        n_completion: int = 0,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        """An error answer in this engine's shape; `message=None` uses the engine's wording."""
        style = self.style(wire)
        n_ctx = self.context_window
        if message is None:
            message = (
                errors.wording(
                    style,
                    kind,
                    model=model,
                    n_prompt=n_prompt,
                    n_ctx=n_ctx,
                    n_completion=n_completion,
                )
                or "error"
            )
        return self.json(
            errors.body(style, status, kind, message, n_prompt=n_prompt, n_ctx=n_ctx),
            status=status,
            headers=headers,
        )

    def json(
        self, obj: Any, *, status: int = 200, headers: dict[str, str] | None = None
    ) -> web.Response:
        hdrs = dict(headers or {})
        if self.kind == "anthropic":
            hdrs.setdefault("request-id", errors.request_id())
        if isinstance(obj, bytes | str):
            data = obj.encode() if isinstance(obj, str) else obj
            ctype = "application/json" if data[:1] in (b"{", b"[") else "text/plain"
            return web.Response(body=data, status=status, content_type=ctype, headers=hdrs)
        ctype = "application/json; charset=utf-8" if self.kind == "llamacpp" else "application/json"
        hdrs["Content-Type"] = ctype
        return web.Response(body=dumps(obj).encode(), status=status, headers=hdrs)

    def _reply_error(self, wire: str, reply: Reply, model: str) -> web.Response:
        headers = {"Retry-After": reply.retry_after} if reply.retry_after is not None else None
        if reply.error_body is not None:
            return self.json(reply.error_body, status=reply.status, headers=headers)
        kind = errors.kind_for(reply.status)
        message = None if reply.error_message == DEFAULT_ERROR_MESSAGE else reply.error_message
        if message is None and errors.wording(self.style(wire), kind, model=model) is None:
            message = reply.error_message
        return self.error(
            wire,
            reply.status,
            kind,
            message,
            model=model,
            n_prompt=self.context_window + 1,
            headers=headers,
        )

    # -- model names and request checks -------------------------------------------------------

    def _canonical(self, name: str) -> str:
        if self.kind == "ollama" and ":" not in name:
            return name + ":latest"  # Ollama always lists a tag
        return name

    @property
    def loaded_models(self) -> list[str]:
        return [m for m in self.models if m not in self.not_loaded]

    def resolve_model(self, wire: str, requested: Any) -> tuple[str, web.Response | None]:
        """The model name to answer as, or the engine's error for this name."""
        policy = self.profile.model_policy
        name = requested if isinstance(requested, str) and requested else None
        if policy == "any":
            return name or (self.models[0] if self.models else "model"), None
        if policy == "lmstudio":
            loaded = self.loaded_models
            if name in self.models:
                return name, None  # loads on first use
            if len(loaded) == 1:
                return loaded[0], None  # one model loaded: the name is ignored
            if not loaded:
                return "", self.error(
                    wire,
                    400,
                    "invalid",
                    "No models loaded. Please load a model in the "
                    "developer page or use the `lms load` command.",
                )
            return "", self.error(wire, 404, "model", model=name or "")
        if name is None:
            if self.kind == "ollama" and wire == "ollama":
                return "", self.error(wire, 400, "invalid", "model is required")
            if self.profile.strict and self.kind not in ("vllm", "vllm-old"):
                return "", self.error(wire, 400, "invalid", "you must provide a model parameter")
            return (self.models[0] if self.models else "model"), None
        if self._canonical(name) in self.models:
            return name, None
        if policy == "localai":  # LocalAI tries to load whatever it is asked for
            return "", self.error(
                wire,
                500,
                "server",
                f"could not load model: rpc error: code = Unknown "
                f"desc = failed to load model with internal loader: {name} not found",
            )
        if self.kind == "openrouter":
            return "", self.error(wire, 400, "invalid", f"{name} is not a valid model ID")
        return "", self.error(wire, 404, "model", model=name)

    def _check_body(self, wire: str, body: Any) -> web.Response | None:
        if not isinstance(body, dict):
            return self.error(wire, 400, "invalid", "request body must be a JSON object")
        options = body.get("stream_options")
        if wire == "openai" and options is not None and not isinstance(options, dict):
            # An object or null in OpenAI's API; vLLM's pydantic ChatCompletionRequest
            # (stream_options: StreamOptions | None) answers anything else with a 400.
            return self.error(wire, 400, "invalid", "stream_options: Input should be an object")
        if not self.profile.strict:
            return None  # local engines generate from garbage (see docs/captures/README.md)
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return self.error(wire, 400, "invalid", "messages: must be a non-empty array")
        if (
            wire == "anthropic"
            and self.kind == "anthropic"
            and not isinstance(body.get("max_tokens"), int)
        ):
            return self.error(wire, 400, "invalid", "max_tokens: Field required")
        return None

    def _check_context(self, wire: str, body: dict[str, Any]) -> web.Response | None:
        if not self.profile.context_check:
            return None
        n = estimate_prompt_tokens(body)
        completion = 0
        if self.profile.context_counts_max_tokens:  # vLLM: prompt + max_tokens must fit
            wanted = body.get("max_completion_tokens") or body.get("max_tokens") or 0
            completion = wanted if isinstance(wanted, int) else 0
        if n + completion > self.context_window:
            return self.error(
                wire, 400, "context", n_prompt=n + completion, n_completion=completion
            )
        return None

    def next_reply(self) -> Reply:
        # The request being answered is the last one recorded: `_dispatch` records it and no
        # handler awaits anything before asking for its reply.
        if self.reply_for is not None and self.requests:
            chosen = self.reply_for(self.requests[-1])
            if chosen is not None:
                return chosen
        return self.replies.popleft() if self.replies else self.default_reply

    # -- chat handlers ---------------------------------------------------------------------

    async def _openai_chat(self, request: web.Request, body: Any) -> web.StreamResponse:
        bad = self._check_body("openai", body)
        if bad is not None:
            return bad
        model, bad = self.resolve_model("openai", body.get("model"))
        if bad is not None:
            return bad
        bad = self._check_context("openai", body)
        if bad is not None:
            return bad
        reply = self.next_reply()
        return await self._serve(
            request,
            "openai",
            reply,
            model,
            stream=bool(body.get("stream")),
            frames=lambda: openai_wire.stream_frames(self.profile, reply, body, model),
            whole=lambda: openai_wire.response(self.profile, reply, body, model),
            content_type="text/event-stream",
        )

    async def _completions(self, request: web.Request, body: Any) -> web.StreamResponse:
        if not isinstance(body, dict) or "prompt" not in body:
            return self.error("openai", 400, "invalid", '"prompt" is required')
        refused = completions_wire.refusal(self.profile, body)
        if refused is not None:
            return self.error("openai", refused[0], "invalid", refused[1])
        model, bad = self.resolve_model("openai", body.get("model"))
        if bad is not None:
            return bad
        reply = self.next_reply()
        return await self._serve(
            request,
            "openai",
            reply,
            model,
            stream=bool(body.get("stream")),
            frames=lambda: completions_wire.stream_frames(self.profile, reply, body, model),
            whole=lambda: completions_wire.response(self.profile, reply, body, model),
            content_type="text/event-stream",
        )

    async def _responses(self, request: web.Request, body: Any) -> web.StreamResponse:
        if not isinstance(body, dict) or body.get("input") in (None, "", []):
            return self.error("openai", 400, "invalid", "input: Field required")
        model, bad = self.resolve_model("openai", body.get("model"))
        if bad is not None:
            return bad
        reply = self.next_reply()
        return await self._serve(
            request,
            "openai",
            reply,
            model,
            stream=bool(body.get("stream")),
            frames=lambda: responses_wire.stream_frames(self.profile, reply, body, model),
            whole=lambda: responses_wire.response(self.profile, reply, body, model),
            content_type="text/event-stream; charset=utf-8",
        )

    async def _anthropic_messages(self, request: web.Request, body: Any) -> web.StreamResponse:
        bad = self._check_body("anthropic", body)
        if bad is not None:
            return bad
        model, bad = self.resolve_model("anthropic", body.get("model"))
        if bad is not None:
            return bad
        bad = self._check_context("anthropic", body)
        if bad is not None:
            return bad
        reply = self.next_reply()
        return await self._serve(
            request,
            "anthropic",
            reply,
            model,
            stream=bool(body.get("stream")),
            frames=lambda: anthropic_wire.stream_frames(self.kind, reply, model),
            whole=lambda: anthropic_wire.message(self.kind, reply, model),
            content_type="text/event-stream; charset=utf-8",
        )

    async def _ollama_chat(self, request: web.Request, body: Any) -> web.StreamResponse:
        bad = self._check_body("ollama", body)
        if bad is not None:
            return bad
        model, bad = self.resolve_model("ollama", body.get("model"))
        if bad is not None:
            return bad
        reply = self.next_reply()
        return await self._serve(
            request,
            "ollama",
            reply,
            model,
            stream=body.get("stream", True) is not False,  # Ollama streams unless told not to
            frames=lambda: ollama_wire.stream_frames(reply, body, model),
            whole=lambda: ollama_wire.response(reply, body, model),
            content_type="application/x-ndjson",
        )

    async def _ollama_generate(self, request: web.Request, body: Any) -> web.StreamResponse:
        bad = self._check_body("ollama", body)
        if bad is not None:
            return bad
        model, bad = self.resolve_model("ollama", body.get("model"))
        if bad is not None:
            return bad
        reply = self.next_reply()
        return await self._serve(
            request,
            "ollama",
            reply,
            model,
            stream=body.get("stream", True) is not False,
            frames=lambda: ollama_wire.generate_frames(reply, body, model),
            whole=lambda: ollama_wire.generate_response(reply, body, model),
            content_type="application/x-ndjson",
        )

    async def _count_tokens(self, request: web.Request, body: Any) -> web.StreamResponse:
        if not isinstance(body, dict):
            return self.error("anthropic", 400, "invalid", "request body must be a JSON object")
        _, bad = self.resolve_model("anthropic", body.get("model"))
        if bad is not None:
            return bad
        return self.json({"input_tokens": estimate_prompt_tokens(body)})

    async def _openai_embeddings(self, request: web.Request, body: Any) -> web.StreamResponse:
        if not isinstance(body, dict) or "input" not in body:
            return self.error("openai", 400, "invalid", "'input' is a required property")
        if self.kind == "ollama" and not text_only(body["input"]):
            return self.error("openai", 400, "invalid", "invalid input type")
        dims = body.get("dimensions")
        if dims is not None and (not isinstance(dims, int) or dims < 1):
            # OpenAI: "dimensions" is an integer >= 1; vLLM's pydantic request answers 400 too
            return self.error("openai", 400, "invalid", "dimensions: must be at least 1")
        model, bad = self.resolve_model("openai", body.get("model"))
        if bad is not None:
            return bad
        return self.json(openai_wire.embeddings(self.profile, body, model))

    async def _ollama_embed(self, request: web.Request, body: Any) -> web.StreamResponse:
        if not isinstance(body, dict):
            return self.error("ollama", 400, "invalid", "invalid request")
        if not text_only(body.get("input", "")):
            return self.error("ollama", 400, "invalid", "invalid input type")
        model, bad = self.resolve_model("ollama", body.get("model"))
        if bad is not None:
            return bad
        return self.json(ollama_wire.embed(body, model))

    async def _openai_models(self, request: web.Request, body: Any) -> web.StreamResponse:
        return self.json(catalog.openai_models(self, request))

    # -- serving one reply with its faults ---------------------------------------------------

    async def _serve(
        self,
        request: web.Request,
        wire: str,
        reply: Reply,
        model: str,
        *,
        stream: bool,
        frames: Callable[[], tuple[list[Frame], list[bytes]]],
        whole: Callable[[], Any],
        content_type: str,
    ) -> web.StreamResponse:
        try:
            if reply.hang:
                await self._closing.wait()  # only stop() ends it, or the client going away
                return web.Response(status=503)
            if reply.reset:
                return self.drop(request)
            if reply.status != 200:
                return self._reply_error(wire, reply, model)
            if stream:
                good, bad = frames()
                return await self._play(request, reply, good, bad, content_type, wire)
            if faults.body_fault(reply) is not None:
                return await faults.whole_with_fault(self, request, reply, dumps(whole()).encode())
            n_chunks = sum(1 for _, content in frames()[0] if content)
            if reply.drop_after_chunks is not None:
                return self.drop(request)
            if reply.delay_s:
                await asyncio.sleep(reply.delay_s * max(1, n_chunks))
            if reply.fail_after_chunks is not None:
                return self.error(wire, 500, "server", reply.error_message, model=model)
            return self.json(whole())
        except (ConnectionResetError, asyncio.CancelledError):
            if not self._closing.is_set():
                self.disconnects += 1
                self._disconnected.set()
            raise

    async def _play(
        self,
        request: web.Request,
        reply: Reply,
        frames: list[Frame],
        error_frames: list[bytes],
        content_type: str,
        wire: str = "openai",
    ) -> web.StreamResponse:
        resp = web.StreamResponse(
            status=200, headers={"Content-Type": content_type, "Cache-Control": "no-cache"}
        )
        await resp.prepare(request)
        last_content = max((i for i, (_, content) in enumerate(frames) if content), default=-1)
        sent = 0
        fault = faults.body_fault(reply)
        for i, (data, content) in enumerate(frames):
            # Fault points: before each content chunk once N have gone, and in any case right
            # after the last one (before the finish frame), so a fault always fires.
            end = i == last_content + 1
            if fault is not None and (content or end) and (end or sent >= fault[1]):
                return await faults.break_stream(self, request, resp, fault[0], wire)
            if content or end:
                if reply.fail_after_chunks is not None and (end or sent >= reply.fail_after_chunks):
                    for frame in error_frames:
                        await resp.write(frame)
                    return await self._end_stream(resp)
                if reply.drop_after_chunks is not None and (end or sent >= reply.drop_after_chunks):
                    return self.drop(request, resp)
            if content:
                if reply.delay_s:
                    await asyncio.sleep(reply.delay_s)
                sent += 1
            if reply.write_bytes:
                for start in range(0, len(data), reply.write_bytes):
                    await resp.write(data[start : start + reply.write_bytes])
                    await asyncio.sleep(0)  # let the reader take each piece as it comes
            else:
                await resp.write(data)
        return await self._end_stream(resp)

    def drop(
        self, request: web.Request, resp: web.StreamResponse | None = None
    ) -> web.StreamResponse:
        """Close the connection abruptly: no terminal frame, no end of the chunked body."""
        transport = request.transport
        if transport is not None:
            transport.close()
        return resp if resp is not None else web.Response(status=500)
