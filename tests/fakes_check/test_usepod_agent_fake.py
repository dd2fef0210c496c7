"""The usepod-agent 0.3.3 fake (tests/fakes/usepod_agent.py) against the fake coordinator and
an engine fake: each behaviour it copies from usepod-agent's source, quirks included."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from modelport.wire.provider import Heartbeat, JobDone, JobError
from tests.fakes import FakeEngine, Reply
from tests.fakes.coordinator import CoordinatorConn, FakeCoordinator
from tests.fakes.usepod_agent import UsepodAgent
from tests.fakes.usepod_backend import UsageParser, parse_openai_models
from tests.fakes.usepod_jobs import parse_job

USER = [{"role": "user", "content": "hi"}]
BODY = {"messages": USER}
Start = Callable[..., Awaitable[tuple[UsepodAgent, CoordinatorConn]]]


@pytest.fixture
async def hub() -> AsyncIterator[FakeCoordinator]:
    async with FakeCoordinator() as coordinator:
        yield coordinator


@pytest.fixture
async def engine(fake_engine: Any) -> FakeEngine:
    fake: FakeEngine = await fake_engine("vllm", models=["m", "m-lora"], context_window=32768)
    return fake


@pytest.fixture
async def start(hub: FakeCoordinator, engine: FakeEngine) -> AsyncIterator[Start]:
    """`agent, conn = await start(**options)`: a UsepodAgent on `engine`, authenticated."""
    agents: list[UsepodAgent] = []

    async def run(**options: Any) -> tuple[UsepodAgent, CoordinatorConn]:
        options.setdefault("backoff_start_s", 0.05)
        agent = UsepodAgent(hub.url, options.pop("engine_url", engine.url), **options)
        agents.append(agent)
        await agent.start()
        conn = await hub.next_connection()
        await conn.next_frame("capabilities")
        return agent, conn

    yield run
    for agent in agents:
        await agent.aclose()


async def until(predicate: Callable[[], bool], within: float = 5) -> None:
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 (polling the fake's counters)
            await asyncio.sleep(0.01)


def posted(engine: FakeEngine) -> dict[str, Any]:
    """The JSON body of the engine's last request."""
    body = engine.last.json
    assert isinstance(body, dict)
    return body


async def quiet(conn: CoordinatorConn, job_id: str, seconds: float = 0.3) -> None:
    """Nothing ends the job for a while."""
    await asyncio.sleep(seconds)
    assert conn.ended(job_id) is None


# -- the handshake and the connection --------------------------------------------------------


async def test_auth_with_enrollment_code_then_provider_id_kept(
    hub: FakeCoordinator, start: Start
) -> None:
    agent, conn = await start(seed=b"\1" * 32, enrollment_code="POD-ENROLL-7K9X4LM2")
    assert conn.auth_response is not None and conn.pubkey == agent.pubkey
    assert conn.auth_response.enrollment_code == "POD-ENROLL-7K9X4LM2"
    assert conn.auth_response.agent_version == "0.3.3"
    # serde_json writes a Value's keys sorted, compact
    assert str(conn.raw[0]).startswith('{"agent_version":"0.3.3","enrollment_code":"POD-')
    assert agent.provider_id == "prov-fake-1"
    await conn.close()  # drain:deploy: the agent comes back, now with its provider_id
    again = await hub.next_connection()
    assert again.auth_response is not None and again.auth_response.enrollment_code is None


async def test_no_enrollment_code_with_a_stored_provider_id(start: Start) -> None:
    _, conn = await start(provider_id="prov-old", enrollment_code="POD-X")
    assert conn.auth_response is not None and conn.auth_response.enrollment_code is None


async def test_refused_auth_backs_off_doubling_with_jitter(engine: FakeEngine) -> None:
    async with FakeCoordinator(accept=lambda pubkey: "unknown key") as hub:
        agent = UsepodAgent(hub.url, engine.url, backoff_start_s=0.02, backoff_max_s=0.16)
        async with agent:
            await until(lambda: len(agent.backoffs) >= 6)
        assert agent.auth_failures[:5] == ["unknown key"] * 5
        assert all(c.auth_result == "unknown key" for c in hub.connections)
        for sleep_s, base in zip(
            agent.backoffs, (0.02, 0.04, 0.08, 0.16, 0.16, 0.16), strict=False
        ):
            assert base * 0.8 <= sleep_s <= base * 1.2
        gaps = [b - a for a, b in zip(agent.dials, agent.dials[1:], strict=False)]
        assert all(gap >= sleep * 0.99 for gap, sleep in zip(gaps, agent.backoffs, strict=False))


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"challenge_text": '{"type":"hello"}'}, "expected auth_challenge, got {"),
        ({"challenge_text": '{"type":"auth_challenge"}'}, "auth_challenge missing nonce"),
        ({"challenge_text": '{"type":"auth_challenge","nonce":"%%"}'}, "decoding challenge nonce"),
        ({"challenge_text": "{nope"}, "parsing ws JSON"),
        ({"auth_ok_text": '{"type":"welcome"}'}, "expected auth_ok, got type='welcome'"),
    ],
)
async def test_a_broken_handshake_is_a_pre_auth_failure(
    engine: FakeEngine, options: dict[str, Any], error: str
) -> None:
    async with FakeCoordinator(**options) as hub:
        agent = UsepodAgent(hub.url, engine.url, backoff_start_s=0.02)
        async with agent:
            await until(lambda: len(agent.session_errors) >= 3)
    assert agent.session_errors[0].startswith(f"pre-auth: {error}")
    assert agent.sessions == 0 and agent.backoffs[2] > agent.backoffs[0]  # escalating


async def test_backoff_resets_after_a_session(hub: FakeCoordinator, start: Start) -> None:
    agent, conn = await start(backoff_start_s=0.05)
    await conn.drop()  # a session that ended after auth: back to the first step
    again = await hub.next_connection()
    await again.next_frame("capabilities")
    assert agent.backoffs and 0.04 <= agent.backoffs[-1] <= 0.06
    assert agent.sessions == 2
    assert agent.session_errors == ["post-auth: ws read error: reset without closing handshake"]


async def test_answers_ping_and_ignores_binary(start: Start) -> None:
    agent, conn = await start()
    assert await conn.ping(b"are you there") == b"are you there"
    await conn.send_bytes(b"\x00\x01")
    assert await conn.ping(b"still") == b"still"
    assert agent.connected and len(agent.dials) == 1


async def test_malformed_and_unknown_frames_are_dropped_silently(start: Start) -> None:
    agent, conn = await start()
    await conn.send_raw("{not json")
    await conn.send_raw('{"type":"config_update","x":1}')
    await conn.send_raw('{"no_type":1}')
    await conn.send_job("m", BODY, job_id="job-1")  # not a UUID: parse_job refuses it
    await conn.send_raw(json.dumps({"type": "job", "job_id": str(uuid.uuid4()), "model_id": "m"}))
    await conn.send_raw('{"type":"job_cancel","job_id":"nope"}')
    await conn.ping()  # everything before it was read
    assert [why for _, why in agent.dropped] == [
        "invalid json",
        "unhandled message type",
        "missing 'type'",
        "malformed job",
        "malformed job",
        "bad job_id in job_cancel",
    ]
    await asyncio.sleep(0.1)
    assert not conn.of_type("job_error") and not conn.of_type("job_done")
    assert agent.connected and len(agent.dials) == 1


async def test_a_drop_is_noticed_and_the_agent_reconnects(
    hub: FakeCoordinator, start: Start
) -> None:
    agent, conn = await start()
    await conn.drop()
    again = await hub.next_connection()
    assert again is not conn and again.auth_result == "ok" and len(agent.dials) == 2


async def test_no_liveness_timer(hub: FakeCoordinator, start: Start) -> None:
    agent, conn = await start(heartbeat_s=0.05)
    conn.pause_reading()  # the hub goes silent: it reads nothing and sends nothing
    await asyncio.sleep(0.6)
    assert agent.connected and len(agent.dials) == 1 and not conn.closed.is_set()
    conn.resume_reading()
    assert len(await _heartbeats(conn, 5)) >= 5


async def test_kill_drops_the_socket_without_a_close_frame(
    hub: FakeCoordinator, start: Start
) -> None:
    agent, conn = await start()
    await agent.kill()
    await conn.wait_closed(timeout=2)
    assert conn.close_code is None
    await asyncio.sleep(0.2)
    assert len(hub.connections) == 1  # a dead agent does not come back


async def test_an_unreachable_hub_is_retried(engine: FakeEngine, refused_url: str) -> None:
    hub_url = refused_url.replace("http", "ws") + "/provider/connect"
    async with UsepodAgent(hub_url, engine.url, backoff_start_s=0.02) as agent:
        await until(lambda: len(agent.dials) >= 3)
    assert agent.session_errors[0].startswith("pre-auth: connecting to ws://127.0.0.1:")


# -- capabilities and heartbeats ---------------------------------------------------------------


async def test_capabilities_from_the_engine(start: Start) -> None:
    agent, conn = await start(max_concurrent=3, max_tokens_per_minute=200_000)
    caps = conn.capabilities[0]
    # vLLM's max_model_len; a LoRA's null one leaves it out; sorted by id; default prices
    assert [(m.model_id, m.context_window) for m in caps.models] == [
        ("m", 32768),
        ("m-lora", None),
    ]
    assert all((m.input_per_1m, m.output_per_1m) == (500_000, 750_000) for m in caps.models)
    assert all((m.backend, m.max_concurrent) == ("vllm", 3) for m in caps.models)
    assert (caps.limits.max_concurrent_total, caps.limits.max_tokens_per_minute) == (3, 200_000)
    assert caps.metadata.agent_version == "0.3.3" and caps.metadata.formats is None
    text = json.loads(next(t for t in conn.raw if '"capabilities"' in str(t)))
    assert "context_window" not in text["models"][1]
    assert agent.frames_sent[1] == caps  # after its auth_response


async def test_capabilities_prices_allow_list_and_zero_price(start: Start) -> None:
    _, conn = await start(
        models=["m", "gone"], prices={"m": (300_000, 450_000)}, default_prices=(1, 2)
    )
    assert [(m.model_id, m.input_per_1m, m.output_per_1m) for m in conn.capabilities[0].models] == [
        ("m", 300_000, 450_000)
    ]


async def test_capabilities_empty_when_the_engine_is_down(start: Start, refused_url: str) -> None:
    _, conn = await start(engine_url=refused_url)
    assert conn.capabilities[0].models == []


async def test_capabilities_of_a_llamacpp_backend(start: Start, fake_engine: Any) -> None:
    llama = await fake_engine("llamacpp", models=["qwen.gguf"])
    _, conn = await start(engine_url=llama.url, backend_kind="llamacpp")
    # llama-server's /v1/models says n_ctx_train under `meta`, which 0.3.3 does not read
    assert [(m.model_id, m.backend, m.context_window) for m in conn.capabilities[0].models] == [
        ("qwen.gguf", "llamacpp", None)
    ]


async def _heartbeats(conn: CoordinatorConn, n: int) -> list[Heartbeat]:
    beats = []
    for _ in range(n):
        frame = await conn.next_frame("heartbeat", timeout=2)
        assert isinstance(frame, Heartbeat)
        beats.append(frame)
    return beats


async def test_heartbeats_of_zeros_every_interval(start: Start) -> None:
    _, conn = await start(heartbeat_s=0.1)
    assert not conn.heartbeats  # the first tick is skipped
    beats = await _heartbeats(conn, 3)
    assert beats == [Heartbeat()] * 3
    text = next(t for t in conn.raw if '"heartbeat"' in str(t))
    assert text == (
        '{"error_rate_60s":0.0,"last_error_at":null,"last_error_code":null,"p50_latency_ms":0,'
        '"p95_latency_ms":0,"queue_depth":0,"tokens_per_sec_p50":0.0,"type":"heartbeat"}'
    )


# -- jobs -----------------------------------------------------------------------------------------


async def test_a_job_streams_raw_bytes_then_done(start: Start, engine: FakeEngine) -> None:
    engine.default_reply = Reply(text="Hello there, world", usage=(11, 4), write_bytes=7)
    _, conn = await start()
    job_id = await conn.send_job("m", BODY)
    end = await conn.job_end(job_id)
    assert isinstance(end, JobDone) and end.job_id == job_id
    assert (end.tokens.input, end.tokens.output) == (11, 4)
    assert (end.tokens.input_tokens, end.tokens.output_tokens) == (11, 4)
    chunks = conn.job_chunks(job_id)
    assert all(len(c) <= 7 for c in chunks)  # split where the engine's writes split
    assert any(not c.endswith(b"\n\n") for c in chunks[:-1])  # SSE events straddle chunks
    body = conn.job_bytes(job_id)
    assert body.endswith(b"data: [DONE]\n\n") and b'"prompt_tokens":11' in body
    sent = engine.last
    assert sent.path == "/v1/chat/completions"
    assert sent.json == {
        "messages": USER,
        "model": "m",
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert sent.headers["User-Agent"] == "usepod-agent/0.3.3"


async def test_stream_forced_and_the_clients_fields_kept(start: Start, engine: FakeEngine) -> None:
    _, conn = await start()
    body = {**BODY, "stream": False, "stream_options": {"include_usage": False}, "model": "m"}
    end = await conn.job_end(await conn.send_job("m", body))
    assert isinstance(end, JobDone)
    assert posted(engine)["stream"] is True
    assert posted(engine)["stream_options"] == {"include_usage": False}  # kept as it was
    assert (end.tokens.input, end.tokens.output) == (0, 0)  # no usage in the stream


async def test_format_is_ignored_and_defaults_apply(start: Start, engine: FakeEngine) -> None:
    _, conn = await start()
    anthropic = {"max_tokens": 5, "messages": USER, "system": "be brief"}
    end = await conn.job_end(await conn.send_job("m", anthropic, format="anthropic"))
    assert isinstance(end, JobDone)
    assert engine.last.path == "/v1/chat/completions"  # posted as it is
    assert posted(engine)["system"] == "be brief"
    end = await conn.job_end(await conn.send_job("m", BODY, format=None, deadline_ms=None))
    assert isinstance(end, JobDone)


async def test_job_id_written_back_lowercase(start: Start) -> None:
    _, conn = await start()
    upper = str(uuid.uuid4()).upper()
    await conn.send_job("m", BODY, job_id=upper)
    end = await conn.job_end(upper.lower())
    assert isinstance(end, JobDone) and end.job_id == upper.lower()


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (429, "internal"),
        (500, "internal"),
        (503, "internal"),
        (401, "auth_rejected_by_backend"),
        (403, "auth_rejected_by_backend"),
    ],
)
async def test_upstream_status_mapped_as_usepod_does(
    start: Start, engine: FakeEngine, status: int, code: str
) -> None:
    engine.default_reply = Reply(status=status, error_message="nope")
    _, conn = await start()
    end = await conn.job_end(await conn.send_job("m", BODY))
    assert isinstance(end, JobError) and end.error_code == code
    assert end.message.startswith(f"backend returned HTTP {status}: ")
    assert end.tokens_emitted == 0


async def test_upstream_404_is_internal(start: Start) -> None:
    _, conn = await start()
    # the body's own `model` is kept, so the engine does not know it: a 404
    end = await conn.job_end(await conn.send_job("m", {**BODY, "model": "other"}))
    assert isinstance(end, JobError) and end.error_code == "internal"
    assert end.message.startswith("backend returned HTTP 404: ")


async def test_unknown_model_is_model_not_loaded(start: Start, engine: FakeEngine) -> None:
    _, conn = await start()
    end = await conn.job_end(await conn.send_job("nope", BODY))
    assert isinstance(end, JobError)
    assert (end.error_code, end.message) == ("model_not_loaded", "no backend serves this model")
    assert not engine.requests_to("/v1/chat/completions")


async def test_engine_gone_is_backend_unreachable(start: Start, engine: FakeEngine) -> None:
    _, conn = await start()
    await engine.stop()
    end = await conn.job_end(await conn.send_job("m", BODY))
    assert isinstance(end, JobError) and end.error_code == "backend_unreachable"
    assert end.message.startswith("backend unreachable: ")


async def test_tokens_emitted_counts_bytes(start: Start, engine: FakeEngine) -> None:
    engine.default_reply = Reply(text="abcdefghijklmnop", drop_after_chunks=2)
    _, conn = await start()
    job_id = await conn.send_job("m", BODY)
    end = await conn.job_end(job_id)
    assert isinstance(end, JobError) and end.error_code == "internal"
    assert end.message.startswith("transport error: ")
    assert end.tokens_emitted == len(conn.job_bytes(job_id)) > 0


async def test_deadline_is_backend_timeout(start: Start, engine: FakeEngine) -> None:
    engine.default_reply = Reply(text="abcdefgh", hang_after_chunks=1)
    _, conn = await start()
    job_id = await conn.send_job("m", BODY, deadline_ms=300)
    end = await conn.job_end(job_id)
    assert isinstance(end, JobError) and end.error_code == "backend_timeout"
    assert end.message == "backend exceeded deadline_ms"
    assert end.tokens_emitted == len(conn.job_bytes(job_id)) > 0
    assert await engine.wait_disconnects(1) == 1


async def test_a_cancelled_job_gets_no_end(start: Start, engine: FakeEngine) -> None:
    engine.default_reply = Reply(text="abcdefgh", hang_after_chunks=1)
    agent, conn = await start()
    job_id = await conn.send_job("m", BODY)
    await conn.next_frame("job_chunk")
    assert agent.in_flight == 1
    await conn.cancel(job_id)
    assert await engine.wait_disconnects(1) == 1  # the upstream request is aborted
    await quiet(conn, job_id)
    assert agent.in_flight == 0


async def test_out_of_capacity_beyond_max_concurrent(start: Start, engine: FakeEngine) -> None:
    engine.default_reply = Reply(text="abcdefgh", hang_after_chunks=1)
    agent, conn = await start(max_concurrent=2)
    first, second = await conn.send_job("m", BODY), await conn.send_job("m", BODY)
    third = await conn.send_job("m", BODY)
    end = await conn.job_end(third)
    assert isinstance(end, JobError)
    assert (end.error_code, end.message, end.tokens_emitted) == (
        "out_of_capacity",
        "agent at max_concurrent",
        0,
    )
    assert agent.in_flight == 2 and conn.ended(first) is None and conn.ended(second) is None


async def test_the_cancel_race_wraps_the_counter(start: Start, engine: FakeEngine) -> None:
    """job_executor.rs: the task decrements in_flight after its terminal frame, then takes
    the active map's lock; a cancel that gets the lock first decrements again."""
    agent, conn = await start(max_concurrent=4, cancel_race_window_s=0.5)
    job_id = await conn.send_job("m", BODY)
    assert isinstance(await conn.job_end(job_id), JobDone)
    await conn.cancel(job_id)  # crossing the job_done on the wire
    for _ in range(50):
        if agent.in_flight:
            break
        await asyncio.sleep(0.01)
    assert agent.in_flight == 2**32 - 1
    refused = await conn.job_end(await conn.send_job("m", BODY))
    assert isinstance(refused, JobError) and refused.error_code == "out_of_capacity"
    await conn.close()  # only a new connection (a new executor) heals it


async def test_without_the_window_no_wrap(start: Start) -> None:
    agent, conn = await start(max_concurrent=4)
    job_id = await conn.send_job("m", BODY)
    assert isinstance(await conn.job_end(job_id), JobDone)
    await conn.cancel(job_id)
    await conn.ping()
    assert agent.in_flight == 0
    assert isinstance(await conn.job_end(await conn.send_job("m", BODY)), JobDone)


async def test_jobs_after_reconnect_are_served(hub: FakeCoordinator, start: Start) -> None:
    agent, conn = await start(cancel_race_window_s=0.3)
    job_id = await conn.send_job("m", BODY)
    await conn.job_end(job_id)
    await conn.cancel(job_id)
    await asyncio.sleep(0.1)
    assert agent.in_flight == 2**32 - 1
    await conn.close()
    again = await hub.next_connection()
    assert isinstance(await again.job_end(await again.send_job("m", BODY)), JobDone)


async def test_a_job_on_a_dropped_connection_stops_at_its_next_chunk(
    hub: FakeCoordinator, start: Start, engine: FakeEngine
) -> None:
    engine.default_reply = Reply(text="abcdefghijklmnopqrst", chunk_chars=2, delay_s=0.05)
    _, conn = await start()
    job_id = await conn.send_job("m", BODY)
    await conn.next_frame("job_chunk")
    await conn.drop()
    assert await engine.wait_disconnects(1) == 1  # its next send fails, the stream is dropped
    again = await hub.next_connection()
    await asyncio.sleep(0.2)
    assert job_id not in again.jobs


async def test_slow_hub_stalls_the_agent(start: Start, engine: FakeEngine) -> None:
    """One loop writes and reads: while a write waits on a hub that does not read, jobs
    back up into the 64-frame queue and each chunk send gives up after send_timeout_s."""
    text = "x" * 8_000_000  # past the 64 queued frames and the kernel's socket buffers
    engine.default_reply = Reply(text=text, chunk_chars=64_000, usage=(1, 1))
    agent, conn = await start(send_timeout_s=0.3)
    conn.pause_reading()
    job_id = await conn.send_job("m", BODY)
    await until(lambda: agent.outbox_depth == 64, within=15)  # the queue is full
    await asyncio.sleep(0.6)  # the blocked chunk send gives up after 0.3 s (same event loop)
    conn.resume_reading()
    end = await conn.job_end(job_id, timeout=10)
    assert isinstance(end, JobError) and end.error_code == "internal"
    assert end.message == "ws outbound send timeout"
    assert 0 < end.tokens_emitted == len(conn.job_bytes(job_id)) < len(text)
    assert agent.connected


# -- the parsers, as usepod-agent's own unit tests and source read -----------------------------


def test_usage_parser_as_http_rs_tests() -> None:
    parser = UsageParser()
    parser.push(
        b'data: {"choices":[{"delta":{"content":"hi"}}],"usage":null}\n'
        b'data: {"choices":[],"usage":{"prompt_tokens":17,"completion_tokens":23}}\n'
        b"data: [DONE]\n"
    )
    assert parser.finish() == (17, 23)
    split = UsageParser()
    for piece in (
        b'data: {"choices":[],"usage":{"input_tokens":12',
        b',"output_tokens":34}}',
        b"\n",
    ):
        split.push(piece)
    assert split.finish() == (12, 34)
    # input_tokens before prompt_tokens; a count past u32 is skipped for the next key
    mixed = UsageParser()
    mixed.push(
        b'data: {"usage":{"prompt_tokens":1,"input_tokens":2,"completion_tokens":4294967296,'
    )
    mixed.push(b'"output":5}}')  # no newline: finish() reads the last line
    assert mixed.finish() == (2, 5)


def test_context_window_from_the_first_key_present() -> None:
    listed = parse_openai_models(
        {
            "data": [
                {"id": "a", "context_length": 8192, "max_model_len": 4096},
                {"id": "b", "context_length": None, "max_model_len": 4096},  # null: unknown
                {"id": "c", "context_window": 2**32 + 5},  # `as u32`
                {"id": "d", "max_model_len": 1.5e3},  # not an integer
                {"object": "model"},  # no id: skipped
            ]
        }
    )
    assert [(m.model_id, m.context_window) for m in listed] == [
        ("a", 8192),
        ("b", None),
        ("c", 5),
        ("d", None),
    ]
    assert parse_openai_models({"object": "list"}) == []


def test_parse_job_as_ws_client_rs() -> None:
    job_id = str(uuid.uuid4())
    base = {"type": "job", "job_id": job_id, "model_id": "m", "request": None}
    job = parse_job(base)
    assert job is not None and (job.format, job.deadline_ms, job.request) == (
        "openai",
        60_000,
        None,
    )
    assert parse_job({**base, "format": "ANTHROPIC"}).format == "openai"  # type: ignore[union-attr]
    assert parse_job({**base, "format": "anthropic"}).format == "anthropic"  # type: ignore[union-attr]
    for deadline, read in ((1500.0, 60_000), (-1, 60_000), ("9", 60_000), (2**32 + 7, 7)):
        assert parse_job({**base, "deadline_ms": deadline}).deadline_ms == read  # type: ignore[union-attr]
    assert parse_job({**base, "job_id": job_id.replace("-", "")}) is not None  # simple form
    for broken in ({**base, "job_id": "j-1"}, {**base, "model_id": 3}, {"job_id": job_id}):
        assert parse_job(broken) is None
