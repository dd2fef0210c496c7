"""The fault matrix's harness: one cell = one upstream fault, one client dialect, stream or
whole, passthrough or transcoded, with or without a fallback candidate.

A cell starts its own protocol fakes (tests/fakes: backend "a" carries the fault on every
chat request, "b" is healthy) and its own gateway (the client asks for the alias "fm":
["a/m"] or ["a/m", "b/m"]), sends one request in the dialect over raw HTTP and returns what
came back (`Observed`). `expect()` says what the issue's rules want; `check()` compares.

Breakers open at the first fault here (threshold 1), so a cell's breaker state says whether
its one fault was counted at all, and against whom.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from modelport.config import BackendConfig, ServerConfig
from modelport.gateway.server import Gateway
from tests.fakes import FakeEngine, Reply
from tests.gateway_harness import admission_state, make_config, until

# -- the axes -----------------------------------------------------------------------------

STATUS_FAULTS = (400, 401, 404, 413, 429, 500, 503, 529)
FAULTS: tuple[str, ...] = (
    "refused",
    "reset_before_headers",
    "reset_mid_stream",
    "stall_first_byte",
    "stall_mid_stream",
    "malformed_chunk",
    "no_terminal_frame",
    *(f"http_{s}" for s in STATUS_FAULTS),
    "engine_killed",
)
#: faults that happen after the engine's first byte (its status line and some chunks)
MID_STREAM = frozenset(
    {
        "reset_mid_stream",
        "stall_mid_stream",
        "malformed_chunk",
        "no_terminal_frame",
        "engine_killed",
    }
)
RETRY_AFTER_S = 30


@dataclass(frozen=True)
class Dialect:
    name: str
    path: str
    passthrough_kind: str  # an engine that speaks the dialect: the body passes through
    transcoded_kind: str | None  # one that does not: the gateway transcodes (None: relay-only)

    def body(self, model: str, stream: bool) -> dict[str, Any]:
        hi = [{"role": "user", "content": "hi"}]
        if self.name == "responses":
            return {"model": model, "input": "hi", "stream": stream}
        if self.name == "anthropic":
            return {"model": model, "max_tokens": 50, "messages": hi, "stream": stream}
        if self.name == "completions":
            return {"model": model, "prompt": "hi", "stream": stream}
        return {"model": model, "messages": hi, "stream": stream}


# vLLM speaks OpenAI chat, Responses, Anthropic Messages and legacy completions natively;
# Ollama its /api/chat; the Anthropic API only Messages and LocalAI only OpenAI chat, so a
# client of another dialect is transcoded to them.
DIALECTS = {
    d.name: d
    for d in (
        Dialect("openai", "/v1/chat/completions", "vllm", "anthropic"),
        Dialect("responses", "/v1/responses", "vllm", "localai"),
        Dialect("anthropic", "/v1/messages", "vllm", "localai"),
        Dialect("ollama", "/api/chat", "ollama", "localai"),
        Dialect("completions", "/v1/completions", "vllm", None),
    )
}
#: (dialect, "passthrough" | "transcoded"): every pair the gateway serves
ROUTES = [
    (d.name, mode)
    for d in DIALECTS.values()
    for mode in ("passthrough", "transcoded")
    if mode == "passthrough" or d.transcoded_kind is not None
]


def fault_reply(fault: str) -> Reply:
    """The fake's scripted answer carrying `fault` (tests/fakes/core.py, Reply)."""
    after = 1  # one content chunk out (of five) before a mid-stream fault
    if fault.startswith("http_"):
        status = int(fault.removeprefix("http_"))
        retry = str(RETRY_AFTER_S) if status == 429 else None
        return Reply(status=status, retry_after=retry)
    return {
        "reset_before_headers": Reply(reset=True),
        "reset_mid_stream": Reply(drop_after_chunks=after),
        "stall_first_byte": Reply(hang=True),
        "stall_mid_stream": Reply(hang_after_chunks=after),
        "malformed_chunk": Reply(garbage_after_chunks=after),
        "no_terminal_frame": Reply(end_after_chunks=after),
        "engine_killed": Reply(kill_after_chunks=after),
    }[fault]


# -- one cell --------------------------------------------------------------------------------

#: short clocks so a stall costs little: the request's deadline, and the stalling backend A's
#: own first-byte limit (issue 11 point 1; the healthy B keeps the whole deadline, so a loaded
#: machine cannot make it miss its first byte)
REQUEST_TIMEOUT_S = 1.5
FIRST_BYTE_TIMEOUT_S = 0.6
FAKE_KEY = "fake-upstream-key"


@dataclass(frozen=True)
class Cell:
    fault: str
    dialect: str
    mode: str  # passthrough | transcoded
    stream: bool
    fallback: bool

    def __str__(self) -> str:
        return (
            f"{self.fault}/{self.dialect}/{self.mode}/"
            f"{'stream' if self.stream else 'whole'}/{'fallback' if self.fallback else 'alone'}"
        )


@dataclass
class Observed:
    status: int
    headers: Mapping[str, str]
    body: bytes
    backend_header: str
    a_url: str
    b_url: str
    breakers: dict[str, str]  # upstream name -> breaker state
    admission: list[tuple[int, int]]  # (in_flight, queued) per upstream, once settled
    a_requests: int  # chat requests A received
    b_requests: int
    elapsed_s: float
    second: tuple[int, Mapping[str, str], int] | None = None  # 429: (status, headers, A's count)
    notes: list[str] = field(default_factory=list)


def _server_overrides() -> dict[str, Any]:
    fields = set(ServerConfig.__struct_fields__)
    server: dict[str, Any] = {"request_timeout_s": REQUEST_TIMEOUT_S, "shutdown_grace_s": 0}
    if "first_byte_timeout_s" in fields:  # the healthy B keeps the whole deadline
        server["first_byte_timeout_s"] = REQUEST_TIMEOUT_S
    return server


async def run_cell(cell: Cell) -> Observed:
    """Fakes, gateway, one request (two for a 429), everything stopped again."""
    dialect = DIALECTS[cell.dialect]
    kind = dialect.passthrough_kind if cell.mode == "passthrough" else dialect.transcoded_kind
    assert kind is not None
    key = FAKE_KEY if kind == "anthropic" else None
    fakes: list[FakeEngine] = []
    gw: Gateway | None = None
    try:
        a: FakeEngine | None = FakeEngine(kind, models=["m"], api_key=key)
        assert a is not None
        if cell.fault != "refused":
            a.default_reply = fault_reply(cell.fault)
        a_url = await a.start()
        fakes.append(a)
        b = FakeEngine(kind, models=["m"], api_key=key)
        b_url = await b.start()
        fakes.append(b)
        backends: list[dict[str, Any]] = [{"kind": kind, "url": a_url, "name": "a"}]
        if "first_byte_timeout_s" in BackendConfig.__struct_fields__:
            backends[0]["first_byte_timeout_s"] = FIRST_BYTE_TIMEOUT_S  # A's own limit
        targets = ["a/m"]
        if cell.fallback:
            backends.append({"kind": kind, "url": b_url, "name": "b"})
            targets.append("b/m")
        if key:
            for entry in backends:
                entry["api_key_env"] = "FAKE_UPSTREAM_KEY"
        config = make_config(
            backends=backends, aliases={"fm": targets}, ledger="off", server=_server_overrides()
        )
        gw = Gateway(config, env={"FAKE_UPSTREAM_KEY": FAKE_KEY})
        url = await gw.start()
        for upstream in gw.router.upstreams:
            upstream.breaker.threshold = 1  # one fault shows whether it is counted
        if cell.fault == "refused":  # it listed its models, then went away: the port refuses
            await a.stop()
            a = None
        loop = asyncio.get_running_loop()
        started = loop.time()
        status, headers, body = await _send(url, dialect, cell.stream)
        elapsed = loop.time() - started
        await until(lambda: all(s == (0, 0) for s in admission_state(gw)), 3.0)  # type: ignore[union-attr]
        observed = Observed(
            status=status,
            headers=headers,
            body=body,
            backend_header=headers.get("x-modelport-backend", ""),
            a_url=a_url,
            b_url=b_url,
            breakers={u.name: u.breaker.state for u in gw.router.upstreams},
            admission=admission_state(gw),
            a_requests=_chat_requests(a),
            b_requests=_chat_requests(b),
            elapsed_s=elapsed,
        )
        if cell.fault == "http_429":
            a_before = _chat_requests(a)
            s2, h2, _ = await _send(url, dialect, cell.stream)
            observed.second = (s2, h2, _chat_requests(a) - a_before)
        return observed
    finally:
        if gw is not None:
            await gw.stop(grace_s=0)
        for fake in fakes:
            if fake.killed is not None:
                await fake.killed
            await fake.stop()


def _chat_requests(fake: FakeEngine | None) -> int:
    if fake is None:
        return 0
    chat = ("/chat/completions", "/messages", "/responses", "/completions", "/api/chat")
    return sum(1 for r in fake.requests if r.path.endswith(chat))


async def _send(url: str, dialect: Dialect, stream: bool) -> tuple[int, dict[str, str], bytes]:
    body = dialect.body("fm", stream)
    headers = {"Content-Type": "application/json"}
    if dialect.name == "anthropic":
        headers["anthropic-version"] = "2023-06-01"
    timeout = aiohttp.ClientTimeout(total=10)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(url + dialect.path, data=json.dumps(body), headers=headers) as resp,
    ):
        try:
            raw = await resp.read()
        except aiohttp.ClientPayloadError as exc:  # the gateway cut its own body: a defect
            raw = b"<<cut: " + str(exc).encode() + b">>"
        return resp.status, {k.lower(): v for k, v in resp.headers.items()}, raw


# -- what the rules want ---------------------------------------------------------------

#: what a client hears when the engine failed this way and no candidate was left (by the
#: client's dialect: Anthropic's clients hear "overloaded" as 529)
ALONE_STATUS = {
    "refused": 502,
    "reset_before_headers": 502,
    "stall_first_byte": 504,
    "http_500": 502,
    "http_503": 503,
    "http_529": 503,
    "reset_mid_stream": 502,  # whole: the engine closed before its status line
    "stall_mid_stream": 504,  # whole: half a body, then nothing
    "engine_killed": 502,  # whole: half a body, then the connection drops
    "malformed_chunk": 502,
    "no_terminal_frame": 502,
    "http_400": 400,
    "http_401": 502,  # the engine refused the gateway's credential: not the client's key
    "http_404": 404,
    "http_413": 413,
    "http_429": 429,
}
#: faults before the client's first byte that let the next candidate answer, and count
#: against the failing backend's breaker (a whole answer's client has no byte yet)
FALLS_BACK_AND_CHARGES = frozenset(
    {"refused", "reset_before_headers", "stall_first_byte", "http_500", "http_503", "http_529"}
)
WHOLE_BODY_BREAKS = frozenset({"reset_mid_stream", "stall_mid_stream", "engine_killed"})


@dataclass(frozen=True)
class Expect:
    status: int
    backend: str  # "a" | "b": whom x-modelport-backend names
    error_event: bool  # a 200 stream that must end in the dialect's error event
    breakers: dict[str, str]
    point: int | None = None  # the issue-11 point today's main fails this cell on


def expect(cell: Cell) -> Expect:
    fault, fallback = cell.fault, cell.fallback
    closed = {"a": "closed", "b": "closed"} if fallback else {"a": "closed"}
    a_open = {**closed, "a": "open"}
    if cell.stream and fault in MID_STREAM:  # after the first byte: no fallback, an error event
        return Expect(200, "a", True, closed)
    point = None
    if fault in ("stall_first_byte", "stall_mid_stream") and fallback:
        point = 1  # the stall used the whole deadline; B was tried after it and blamed
    if fault == "http_429":
        point = 2
    if fault == "http_401":
        point = 11
    if fault in FALLS_BACK_AND_CHARGES or (fault in WHOLE_BODY_BREAKS and not cell.stream):
        return _either(cell, ALONE_STATUS[fault], a_open, point)
    if fault in ("http_404", "http_429", "http_401"):  # the next may answer; no breaker fault
        return _either(cell, ALONE_STATUS[fault], closed, point)
    # 400 and 413 are the request's fault; an unreadable whole body is no transport fault
    return Expect(ALONE_STATUS[fault], "a", False, closed, point)


def _either(cell: Cell, alone: int, breakers: dict[str, str], point: int | None) -> Expect:
    if cell.fallback:
        return Expect(200, "b", False, breakers, point)
    if cell.dialect == "anthropic" and alone == 503:
        alone = 529
    return Expect(alone, "a", False, breakers, point)


def check(cell: Cell, seen: Observed) -> list[str]:
    """Every way `seen` departs from `expect(cell)`; empty when the cell holds."""
    want = expect(cell)
    wrong: list[str] = []
    if seen.status != want.status:
        wrong.append(f"status {seen.status}, want {want.status}")
    url = seen.a_url if want.backend == "a" else seen.b_url
    if not seen.backend_header.endswith(url):
        wrong.append(f"x-modelport-backend {seen.backend_header!r}, want {want.backend}")
    if want.backend == "a" and seen.b_requests:
        wrong.append("B was asked, though no fallback may happen")
    if seen.breakers != want.breakers:
        wrong.append(f"breakers {seen.breakers}, want {want.breakers}")
    if any(state != (0, 0) for state in seen.admission):
        wrong.append(f"admission slots not released: {seen.admission}")
    wrong += body_problems(cell.dialect, seen, want)
    if cell.fault == "http_429":
        wrong += _retry_after_problems(cell, seen)
    if cell.fault == "http_401" and seen.status != 200:
        text = seen.body.decode(errors="replace")
        if "invalid_api_key" in text or "'a'" not in text:
            wrong.append(f"a 401 of the engine must name backend 'a', not blame the client: {text}")
    return wrong


def _retry_after_problems(cell: Cell, seen: Observed) -> list[str]:
    """A 429 passes the engine's Retry-After on, and holds the model off that backend."""
    wrong: list[str] = []
    if not cell.fallback and seen.headers.get("retry-after") != str(RETRY_AFTER_S):
        wrong.append(f"Retry-After {seen.headers.get('retry-after')!r}, want {RETRY_AFTER_S}")
    assert seen.second is not None
    status, headers, asked_a = seen.second
    if asked_a:
        wrong.append("the second request reached A within its Retry-After")
    if cell.fallback and status != 200:
        wrong.append(f"second request: {status}, want 200 from B")
    if not cell.fallback:
        retry = headers.get("retry-after", "")
        if status != 429 or not retry.isdigit() or not 0 < int(retry) <= RETRY_AFTER_S:
            wrong.append(f"second request: {status} Retry-After {retry!r}, want 429 <= 30")
    return wrong


# -- the body is in the client's dialect -----------------------------------------------------


def body_problems(dialect: str, seen: Observed, want: Expect) -> list[str]:
    try:
        if seen.status != 200:
            _error_body(dialect, json.loads(seen.body))
        elif want.error_event:
            _stream_error(dialect, seen.body)
        elif seen.headers.get("content-type", "").startswith(
            ("text/event-stream", "application/x-ndjson")
        ):
            _stream_success(dialect, seen.body)
        else:
            _whole_success(dialect, json.loads(seen.body))
    except (AssertionError, ValueError, KeyError, TypeError) as exc:
        return [f"body not in the {dialect} dialect ({exc!r}): {seen.body[-300:]!r}"]
    return []


def _error_body(dialect: str, body: Any) -> None:
    if dialect == "anthropic":
        assert body["type"] == "error" and body["error"]["type"] and body["error"]["message"]
    elif dialect == "ollama":
        assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"]
    else:
        assert isinstance(body["error"]["message"], str) and body["error"]["message"]
        assert isinstance(body["error"]["type"], str)


def _sse(body: bytes) -> list[tuple[str | None, str]]:
    frames: list[tuple[str | None, str]] = []
    for block in body.decode().replace("\r\n", "\n").split("\n\n"):
        event, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        if event is not None or data:
            frames.append((event, "\n".join(data)))
    return frames


def _ndjson(body: bytes) -> list[Any]:
    return [json.loads(line) for line in body.decode().splitlines() if line.strip()]


def _stream_error(dialect: str, body: bytes) -> None:
    """The stream ends in the dialect's error event and never claims success."""
    if dialect == "ollama":
        lines = _ndjson(body)
        assert isinstance(lines[-1].get("error"), str) and lines[-1]["error"], "no error line"
        assert not any(line.get("done") for line in lines), "a done line"
        return
    frames = _sse(body)
    events = [event for event, _ in frames]
    if dialect == "anthropic":
        assert events[-1] == "error" and "message_stop" not in events, events
        assert json.loads(frames[-1][1])["error"]["message"]
    elif dialect == "responses":
        assert "response.completed" not in events, events
        assert events[-1] in ("error", "response.failed"), events
    else:
        assert all(data != "[DONE]" for _, data in frames), "[DONE] after a failure"
        assert json.loads(frames[-1][1])["error"]["message"]


def _stream_success(dialect: str, body: bytes) -> None:
    if dialect == "ollama":
        assert _ndjson(body)[-1]["done"] is True
        return
    frames = _sse(body)
    events = [event for event, _ in frames]
    if dialect == "anthropic":
        assert events[-1] == "message_stop", events
    elif dialect == "responses":
        assert events[-1] == "response.completed", events
    else:
        assert frames[-1][1] == "[DONE]", frames[-1]


def _whole_success(dialect: str, body: Any) -> None:
    if dialect == "anthropic":
        assert body["type"] == "message" and body["content"]
    elif dialect == "ollama":
        assert body["done"] is True and body["message"]["content"]
    elif dialect == "responses":
        assert body["status"] == "completed" and body["output"]
    else:
        assert body["choices"]
