"""Find local engines: probe well-known ports, tell engines apart, list their models.

Ports are only where to look. Several engines share defaults (llama-server and LocalAI
both like 8080) and any of them can run anywhere, so an engine is named by what it
answers (docs/wire.md, "Discovery fingerprints"), never by the port it was found on.
Everything runs at once with short timeouts: a closed port costs one refused connect,
and ten engines cost about what one does.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import msgspec
from yarl import URL

from modelport.backends import Backend, connect
from modelport.backends.profiles import DISCOVERY_PORTS
from modelport.errors import BackendError
from modelport.router import Limits, Router, Upstream
from modelport.types import BackendHealth, BackendModel

__all__ = [
    "DEFAULT_PORTS",
    "Answer",
    "Found",
    "Located",
    "discover",
    "fingerprint",
    "identify",
    "locate",
    "serve_new_engines",
]

# Where engines listen by default; the kind table keeps the list (config shows it too).
DEFAULT_PORTS = DISCOVERY_PORTS

# Listing models is real work on some engines (Ollama asks /api/show per model, LM Studio
# may load one), so it gets more time than a fingerprint probe.
DESCRIBE_TIMEOUT = 5.0

# No engine serves this path; a 2xx here means the server answers anything (LM Studio,
# a catch-all web app), so its 2xx elsewhere proves nothing.
CANARY = "/modelport-discovery-canary"

PROBE_PATHS = (
    "/",
    "/props",
    "/health",
    "/v1/models",
    "/version",
    "/api/v0/models",
    "/readyz",
    CANARY,
)


@dataclass(frozen=True)
class Answer:
    """What one GET returned."""

    status: int
    body: bytes
    latency_ms: float

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return msgspec.json.decode(self.body)
        except msgspec.DecodeError:
            return None


Answers = Mapping[str, Answer | None]


@dataclass(frozen=True)
class Located:
    """Which engine kind answers at which URL: a fingerprint, nothing described yet."""

    kind: str
    url: str
    latency_ms: float


@dataclass(frozen=True)
class Found:
    """One engine found: what it is, where, whether it can serve now, and its models."""

    kind: str
    url: str
    ready: bool
    latency_ms: float | None
    models: list[BackendModel]
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "url": self.url,
            "ready": self.ready,
            "latency_ms": self.latency_ms,
            "models": [
                {"id": m.id, "context_window": m.context_window, "loaded": m.loaded}
                for m in self.models
            ],
            "error": self.error,
        }


# ---------------------------------------------------------------------------
# Fingerprints: pure functions of the answers, tried in the order docs/wire.md gives.


def _json(answers: Answers, path: str, *, ok_only: bool = True) -> Any:
    answer = answers.get(path)
    if answer is None or (ok_only and not answer.ok):
        return None
    return answer.json()


def _model_entries(answers: Answers) -> list[dict[str, Any]]:
    """The `data` entries of a 2xx /v1/models answer; [] for anything else."""
    body = _json(answers, "/v1/models")
    data = body.get("data") if isinstance(body, dict) else None
    return [e for e in data if isinstance(e, dict)] if isinstance(data, list) else []


def _owned_by(answers: Answers, owner: str) -> bool:
    return any(e.get("owned_by") == owner for e in _model_entries(answers))


def _is_ollama(answers: Answers) -> bool:
    root = answers.get("/")
    return root is not None and root.ok and root.body.strip().startswith(b"Ollama is running")


def _is_llamacpp(answers: Answers) -> bool:
    """`/props` is llama-server's own; behind --api-key it is closed, but /health is public."""
    props = _json(answers, "/props")
    if isinstance(props, dict) and (
        "default_generation_settings" in props or "build_info" in props
    ):
        return True
    health = _json(answers, "/health", ok_only=False)
    return isinstance(health, dict) and (
        _owned_by(answers, "llamacpp") or _loading_llamacpp(health)
    )


def _loading_llamacpp(health: dict[str, Any]) -> bool:
    """llama-server's words while it loads; nothing else says exactly this."""
    error = health.get("error")
    return (
        isinstance(error, dict)
        and error.get("message") == "Loading model"
        and error.get("type") == "unavailable_error"
    )


def _is_vllm(answers: Answers) -> bool:
    """`/version` alone is too common a route; the model list must agree (or ask for a key)."""
    if _owned_by(answers, "vllm"):
        return True
    version = _json(answers, "/version")
    if not (isinstance(version, dict) and isinstance(version.get("version"), str)):
        return False
    models = answers.get("/v1/models")
    locked = models is not None and models.status in (401, 403)
    return locked or any("max_model_len" in e for e in _model_entries(answers))


def _is_lmstudio(answers: Answers) -> bool:
    """Its root answers 200 to anything, so only its own model list counts."""
    body = _json(answers, "/api/v0/models")
    data = body.get("data") if isinstance(body, dict) else None
    return isinstance(data, list) and all(isinstance(e, dict) and "state" in e for e in data)


def _is_localai(answers: Answers) -> bool:
    """`/readyz` counts only on a server that refuses made-up paths and serves /v1/models."""
    readyz, canary, models = answers.get("/readyz"), answers.get(CANARY), answers.get("/v1/models")
    if readyz is None or not readyz.ok or (canary is not None and canary.ok):
        return False
    return models is not None and (models.ok or models.status in (401, 403))


def _is_openai_compatible(answers: Answers) -> bool:
    body = _json(answers, "/v1/models")
    return isinstance(body, dict) and isinstance(body.get("data"), list)


RULES: tuple[tuple[str, Callable[[Answers], bool]], ...] = (
    ("ollama", _is_ollama),
    ("llamacpp", _is_llamacpp),
    ("vllm", _is_vllm),
    ("lmstudio", _is_lmstudio),
    ("localai", _is_localai),
    ("openai-compatible", _is_openai_compatible),
)


def identify(answers: Answers) -> str | None:
    """The engine kind these answers betray, first rule first; None for no engine."""
    for kind, rule in RULES:
        if rule(answers):
            return kind
    return None


# ---------------------------------------------------------------------------
# I/O


async def _get(session: aiohttp.ClientSession, url: str, seconds: float) -> Answer | None:
    """One GET; None when it fails or runs out of time, since silence is an answer too."""
    started = time.perf_counter()
    try:
        async with session.get(
            url, timeout=aiohttp.ClientTimeout(total=seconds), allow_redirects=False
        ) as response:
            body = await response.read()
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None
    return Answer(response.status, body, (time.perf_counter() - started) * 1000)


async def fingerprint(
    session: aiohttp.ClientSession,
    url: str,
    *,
    timeout: float,  # noqa: ASYNC109 (per probe)
) -> tuple[str, float] | None:
    """(kind, latency_ms) of the engine at `url`, or None when nothing known answers.

    All probes go out at once; the latency is the quickest round trip among them.
    """
    root = _root(url)
    results = await asyncio.gather(*(_get(session, root + p, timeout) for p in PROBE_PATHS))
    answers = dict(zip(PROBE_PATHS, results, strict=True))
    kind = identify(answers)
    if kind is None:
        return None
    return kind, min(a.latency_ms for a in results if a is not None)


async def _listening(host: str, port: int, seconds: float) -> bool:
    """A bare TCP connect, so that a closed port costs one refusal and no HTTP."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), seconds)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def _health(backend: Backend) -> BackendHealth:
    try:
        return await asyncio.wait_for(backend.health(), DESCRIBE_TIMEOUT)
    except TimeoutError:
        return BackendHealth(alive=True, ready=False, last_error="health check timed out")
    except BackendError as exc:
        return BackendHealth(alive=True, ready=False, last_error=exc.message)


async def _models(backend: Backend) -> tuple[list[BackendModel], str | None]:
    """The model list, or [] and why: one engine's bad list must not sink discovery."""
    try:
        return await asyncio.wait_for(backend.list_models(), DESCRIBE_TIMEOUT), None
    except TimeoutError:
        return [], "listing models timed out"
    except BackendError as exc:
        return [], exc.message


async def _describe(kind: str, url: str, latency_ms: float) -> Found:
    """Health and models of a fingerprinted engine, asked at once through its backend."""
    backend = connect(f"{kind}:{url}")
    try:
        health, (models, models_error) = await asyncio.gather(_health(backend), _models(backend))
    finally:
        await backend.aclose()
    errors = [e for e in (health.last_error, models_error) if e]
    return Found(
        kind=kind,
        url=url,
        ready=health.ready,
        latency_ms=health.latency_ms if health.latency_ms is not None else latency_ms,
        models=models,
        error="; ".join(dict.fromkeys(errors)) or None,
    )


async def _locate_one(session: aiohttp.ClientSession, url: str, seconds: float) -> Located | None:
    """One place: is it open, and what answers there."""
    parsed = URL(url)
    if parsed.host is None or parsed.port is None:
        return None
    if not await _listening(parsed.host, parsed.port, seconds):
        return None
    known = await fingerprint(session, url, timeout=seconds)
    if known is None:
        return None
    kind, latency_ms = known
    return Located(kind, url, latency_ms)


def _root(url: str) -> str:
    """http://h:8000/v1/ and http://h:8000 name the same server."""
    url = url.rstrip("/")
    return url.removesuffix("/v1")


def _host_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def locate(
    host: str = "127.0.0.1",
    ports: Iterable[int] = DEFAULT_PORTS,
    *,
    timeout: float = 0.6,  # noqa: ASYNC109 (per probe, not for the whole call)
    extra_urls: Iterable[str] = (),
    skip: Container[str] = (),
) -> list[Located]:
    """The kind of every engine listening on `host`'s `ports` or at `extra_urls`, in the
    order given. URLs in `skip` (engines already served) are not probed at all."""
    urls = [_host_url(host, p) for p in ports] + [_root(u) for u in extra_urls]
    urls = [u for u in dict.fromkeys(urls) if u not in skip]
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        results = await asyncio.gather(*(_locate_one(session, u, timeout) for u in urls))
    return [r for r in results if r is not None]


async def discover(
    host: str = "127.0.0.1",
    ports: Iterable[int] = DEFAULT_PORTS,
    *,
    timeout: float = 0.6,  # noqa: ASYNC109 (per probe, not for the whole call)
    extra_urls: Iterable[str] = (),
) -> list[Found]:
    """`locate`, then each engine's health and models (what `modelport discover` shows)."""
    located = await locate(host, ports, timeout=timeout, extra_urls=extra_urls)
    return list(await asyncio.gather(*(_describe(e.kind, e.url, e.latency_ms) for e in located)))


async def serve_new_engines(
    router: Router, host: str, ports: Iterable[int], limits: Limits
) -> list[Upstream]:
    """Fingerprint the ports nothing is served from yet and hand each new engine to the
    router (`discovered=True`); the router describes them. The gateway's and the agent's
    discover hook."""
    served = {u.backend.url for u in router.upstreams if u.backend.url}
    added: list[Upstream] = []
    for engine in await locate(host, ports, skip=served):
        backend = connect(f"{engine.kind}:{engine.url}")
        if backend.url is not None and router.by_url(backend.url) is not None:
            await backend.aclose()  # the same engine under another spelling of its URL
            continue
        added.append(router.add(backend, limits, name=engine.kind, discovered=True))
    return added
