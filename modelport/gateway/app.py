"""The aiohttp application: HTTP in, `Service` calls, HTTP out.

Everything about requests and answers lives in `modelport.service`; this module knows only
HTTP: routes, keys, body limits, request ids, writing a stream and noticing the client
leave (aiohttp cancels the handler, which closes the upstream stream on its way out).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import web

from modelport.errors import AuthError, BackendError, InvalidRequest, Overloaded
from modelport.gateway.browser import POLICY, BrowserPolicy, browser_guard, cors_headers
from modelport.gateway.context import KEY_ID, REQUEST_ID, respond
from modelport.gateway.models import ModelRoutes, wants_anthropic
from modelport.gateway.ollama_api import OllamaRoutes
from modelport.gateway.openapi import OPENAPI
from modelport.records import new_request_id
from modelport.scrub import public_message, redact
from modelport.service import Reply, Service, error_reply, stream_error
from modelport.types import RelayContext, WireFormat
from modelport.wire import codec_for

log = logging.getLogger("modelport.gateway")

# `/` is Ollama's liveness answer ("Ollama is running"), as public as /health.
PUBLIC_PATHS = frozenset({"/health", "/ready", "/"})
# Where agents connect when the hub is on: they authenticate by signature, not by API key.
AGENT_PATH = "/provider/connect"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SERVICE = web.AppKey("service", Service)
KEYS = web.AppKey("keys", dict)
STREAMS = web.AppKey("streams", set)
STATE = web.AppKey("state", dict)
SECRETS = web.AppKey("secrets", tuple)  # every key the gateway holds, for status pages
AGENT_PATHS = web.AppKey("agent_paths", frozenset)  # paths past the keys: the hub's socket


def format_of(path: str) -> WireFormat:
    """Which dialect an answer to this path must speak, errors included."""
    if path.startswith("/v1/messages"):
        return WireFormat.ANTHROPIC
    if path.startswith("/api/") or path in ("/", "/api"):
        return WireFormat.OLLAMA  # Ollama's native API (its root answers as Ollama too)
    return WireFormat.RESPONSES if path.startswith("/v1/responses") else WireFormat.OPENAI


def dialect_of(request: web.Request) -> WireFormat:
    """`format_of` the path, except that /v1/models answers Anthropic's SDKs (they send
    `anthropic-version`) in Anthropic's shape."""
    if request.path.startswith("/v1/models") and wants_anthropic(request):
        return WireFormat.ANTHROPIC
    return format_of(request.path)


def fail(request: web.Request, err: BackendError) -> web.Response:
    headers = {"x-request-id": request.get(REQUEST_ID, "")}
    return respond(error_reply(dialect_of(request), err, headers))


# -- middleware ------------------------------------------------------------------------


@web.middleware
async def request_ids(request: web.Request, handler: Handler) -> web.StreamResponse:
    given = request.headers.get("x-request-id", "")
    request[REQUEST_ID] = given if _REQUEST_ID.match(given) else new_request_id()
    return await handler(request)


@web.middleware
async def keys_required(request: web.Request, handler: Handler) -> web.StreamResponse:
    keys: dict[str, str] = request.app[KEYS]
    request[KEY_ID] = ""
    if not keys or request.path in request.app[AGENT_PATHS]:
        return await handler(request)
    presented = _presented_key(request)
    key_id = _match_key(presented, keys) if presented else None
    if request.path in PUBLIC_PATHS:  # answered to anyone; a valid key shows more (/ready)
        request[KEY_ID] = key_id or ""
        return await handler(request)
    if key_id is None:
        why = (
            "invalid API key"
            if presented
            else "missing API key (Authorization: Bearer or x-api-key)"
        )
        return fail(request, AuthError(why))
    request[KEY_ID] = key_id
    return await handler(request)


def _presented_key(request: web.Request) -> str:
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return request.headers.get("x-api-key", "").strip()


def _match_key(presented: str, keys: dict[str, str]) -> str | None:
    """Compare against every key in constant time; no early exit that timing could reveal."""
    found: str | None = None
    given = presented.encode()
    for key, key_id in keys.items():
        if hmac.compare_digest(given, key.encode()):
            found = key_id
    return found


@web.middleware
async def errors_in_format(request: web.Request, handler: Handler) -> web.StreamResponse:
    """No stack trace ever reaches a client: failures become the client's error shape."""
    try:
        return await handler(request)
    except BackendError as exc:  # a handler's refusal (an unknown model, a bad query)
        return fail(request, exc)
    except web.HTTPRequestEntityTooLarge as exc:
        return fail(request, InvalidRequest(f"request body too large: {exc.text}", status=413))
    except web.HTTPNotFound:
        return fail(request, BackendError(f"no route {request.method} {request.path}", status=404))
    except web.HTTPMethodNotAllowed:
        err = InvalidRequest(f"method {request.method} not allowed on {request.path}", status=405)
        return fail(request, err)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("internal error on %s %s", request.method, request.path)
        return fail(request, BackendError("internal error in the gateway", status=500))


# -- handlers --------------------------------------------------------------------------


async def chat_completions(request: web.Request) -> web.StreamResponse:
    return await _chat(request, WireFormat.OPENAI)


async def messages(request: web.Request) -> web.StreamResponse:
    return await _chat(request, WireFormat.ANTHROPIC)


async def responses(request: web.Request) -> web.StreamResponse:
    return await _chat(request, WireFormat.RESPONSES)


async def ollama_chat(request: web.Request) -> web.StreamResponse:
    return await _chat(request, WireFormat.OLLAMA)


async def ollama_generate(request: web.Request) -> web.StreamResponse:
    return await _chat(request, WireFormat.OLLAMA_GENERATE)


async def _chat(request: web.Request, format: WireFormat) -> web.StreamResponse:
    if request.app[STATE].get("draining"):
        return fail(request, Overloaded("the gateway is shutting down", retry_after=5.0))
    body = await request.read()
    service = request.app[SERVICE]
    reply = await service.chat(
        format,
        body,
        request_id=request[REQUEST_ID],
        key_id=request[KEY_ID],
        context=_relay_context(request, format),
    )
    if reply.chunks is None:
        return respond(reply)
    return await _stream(request, reply, format)


def _relay_context(request: web.Request, format: WireFormat) -> RelayContext | None:
    """The query string and the client's dialect headers, for a passthrough to carry; None
    when there is neither (most requests: the relay then skips the merge)."""
    query = request.query_string
    wanted = codec_for(format).forwarded_headers
    if wanted:
        given = request.headers
        headers = {name: given[name] for name in wanted if name in given}
        if headers or query:
            return RelayContext(query=query, headers=headers)
    elif query:
        return RelayContext(query=query)
    return None


async def _stream(request: web.Request, reply: Reply, format: WireFormat) -> web.StreamResponse:
    """Write a stream; a client that leaves cancels this task, and `aclose` stops upstream."""
    assert reply.chunks is not None
    response = web.StreamResponse(
        status=reply.status,
        headers={
            **reply.headers,
            "Content-Type": reply.content_type,  # the dialect's: SSE, or Ollama's NDJSON
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        },
    )
    streams: set[asyncio.Task[Any]] = request.app[STREAMS]
    task = asyncio.current_task()
    assert task is not None
    streams.add(task)
    try:
        await response.prepare(request)
        async for chunk in reply.chunks:
            await response.write(chunk)
    except asyncio.CancelledError:
        if request.app[STATE].get("draining"):
            await _write_shutdown(response, format)
        raise
    except ConnectionError:
        pass  # the client left; closing the chunks below stops the upstream
    finally:
        streams.discard(task)
        await reply.chunks.aclose()
    return response


async def _write_shutdown(response: web.StreamResponse, format: WireFormat) -> None:
    with contextlib.suppress(ConnectionError, RuntimeError):
        await response.write(stream_error(format, Overloaded("the gateway is shutting down")))


async def count_tokens(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    service = request.app[SERVICE]
    reply = await service.count_tokens(body, request_id=request[REQUEST_ID], key_id=request[KEY_ID])
    return respond(reply)


async def completions(request: web.Request) -> web.StreamResponse:
    """OpenAI's legacy completions: passthrough to an engine that serves them."""
    if request.app[STATE].get("draining"):
        return fail(request, Overloaded("the gateway is shutting down", retry_after=5.0))
    body = await request.read()
    service = request.app[SERVICE]
    reply = await service.completions(body, request_id=request[REQUEST_ID], key_id=request[KEY_ID])
    if reply.chunks is None:
        return respond(reply)
    return await _stream(request, reply, WireFormat.OPENAI)


async def embeddings(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    service = request.app[SERVICE]
    reply = await service.embeddings(body, request_id=request[REQUEST_ID], key_id=request[KEY_ID])
    return respond(reply)


async def health(request: web.Request) -> web.StreamResponse:
    return web.json_response({"status": "ok"})


async def ready(request: web.Request) -> web.StreamResponse:
    """Ready or not, to anyone (load balancers ask without keys); per-backend details only
    to a caller with a valid key, or to everyone when the gateway has no keys (then it
    listens on loopback only and every local client is trusted)."""
    router = request.app[SERVICE].router
    is_ready = router.ready() and not request.app[STATE].get("draining")
    body: dict[str, Any] = {"status": "ready" if is_ready else "not ready"}
    if request[KEY_ID] or not request.app[KEYS]:
        secrets = request.app[SECRETS]
        body["backends"] = [
            {
                "name": u.name,
                "backend": u.backend.id,
                "ready": u.ready,
                "breaker": u.breaker.state,
                "in_flight": u.admission.in_flight,
                "queued": u.admission.queued,
                "models": len(u.models),
                "last_error": _shown(u.health.last_error, secrets)
                if u.health
                else "not checked yet",
            }
            for u in router.upstreams
        ]
    return web.json_response(body, status=200 if is_ready else 503, dumps=_dumps)


def _shown(text: str | None, secrets: tuple[str, ...]) -> str | None:
    """A status string as it may leave: the backends scrub their own errors; this catches
    what reached the router another way (an unexpected exception's text)."""
    return None if text is None else public_message(redact(text, secrets))


async def openapi(request: web.Request) -> web.StreamResponse:
    return web.json_response(OPENAPI, dumps=_dumps)


def _dumps(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def build_app(
    service: Service,
    *,
    keys: dict[str, str] | None = None,
    max_body_bytes: int = 32 * 1024 * 1024,
    metrics: Callable[[], Awaitable[tuple[bytes, str]]] | None = None,
    browser: BrowserPolicy | None = None,
    secrets: tuple[str, ...] = (),
    hub: Handler | None = None,
) -> web.Application:
    """The gateway app. `keys` maps accepted key values to their ids (empty: no auth);
    `browser`: the Hosts and Origins answered (None: every one, for embedding the app);
    `hub`: the agents' WebSocket at /provider/connect (none unless the hub is on)."""
    guards = [] if browser is None else [browser_guard(browser, fail)]
    app = web.Application(
        middlewares=[request_ids, errors_in_format, *guards, keys_required],
        client_max_size=max_body_bytes,
    )
    if browser is not None:
        app[POLICY] = browser
        app.on_response_prepare.append(cors_headers)
    app[SERVICE] = service
    app[KEYS] = dict(keys or {})
    app[SECRETS] = (*secrets, *app[KEYS])
    app[STREAMS] = set()
    app[STATE] = {"started": time.time()}
    app[AGENT_PATHS] = frozenset({AGENT_PATH}) if hub is not None else frozenset()
    if hub is not None:
        app.router.add_get(AGENT_PATH, hub)
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/completions", completions)
    app.router.add_post("/v1/responses", responses)
    app.router.add_post("/v1/messages", messages)
    app.router.add_post("/v1/messages/count_tokens", count_tokens)
    app.router.add_post("/v1/embeddings", embeddings)
    app.router.add_post("/api/chat", ollama_chat)
    app.router.add_post("/api/generate", ollama_generate)
    ModelRoutes(service.router).add_to(app)
    OllamaRoutes(service).add_to(app)
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/openapi.json", openapi)
    if metrics is not None:
        render = metrics

        async def metrics_handler(request: web.Request) -> web.StreamResponse:
            body, content_type = await render()
            return web.Response(body=body, headers={"Content-Type": content_type})

        app.router.add_get("/metrics", metrics_handler)
    return app


async def drain(app: web.Application, grace_s: float) -> None:
    """Stop taking chats, let streams finish for `grace_s`, then end them with an error event."""
    app[STATE]["draining"] = True
    streams: set[asyncio.Task[Any]] = app[STREAMS]
    if streams and grace_s > 0:
        await asyncio.wait(list(streams), timeout=grace_s)
    for task in list(streams):
        task.cancel()
    if streams:
        await asyncio.wait(list(streams), timeout=2.0)
