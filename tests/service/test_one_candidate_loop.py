"""chat, embeddings and count_tokens run ONE candidate loop (modelport/service/candidates.py).

Each test here pins a deliberate change of issue 8: before it, embeddings and count_tokens
had loops of their own with other rules (count_tokens skipped admission and the breaker,
embeddings gave every candidate a fresh timeout and did not fall back on ModelNotFound,
and a malformed embeddings body left no record).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import openai
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from modelport.gateway.ledger import usage_totals
from tests.fakes import FakeEngine, Reply, fake_vector
from tests.gateway_harness import admission_state, settled

HI = [{"role": "user", "content": "hi"}]
SLOW = Reply(text="slow " * 40, chunk_chars=2, delay_s=0.05)  # about five seconds of stream


def backend(kind: str, fake: FakeEngine, **kw: Any) -> dict[str, Any]:
    return {"kind": kind, "url": fake.url, **kw}


class Holders:
    """Raw clients, each holding one slot with a chat stream it has read one chunk of."""

    def __init__(self) -> None:
        self.session = aiohttp.ClientSession()
        self.responses: list[aiohttp.ClientResponse] = []

    async def hold(self, url: str, model: str) -> None:
        body = {"model": model, "messages": HI, "stream": True}
        response = await self.session.post(url + "/v1/chat/completions", json=body)
        assert response.status == 200
        assert await response.content.readany()
        self.responses.append(response)

    async def close(self) -> None:
        for response in self.responses:
            response.close()
        await self.session.close()


@pytest.fixture
async def holders() -> AsyncIterator[Holders]:
    h = Holders()
    yield h
    await h.close()


def access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "modelport.access"]


async def test_count_tokens_meets_admission_like_the_other_endpoints(
    fake_engine, gateway, clients, holders: Holders
) -> None:
    llama = await fake_engine("llamacpp", models=["gemma"])
    llama.default_reply = SLOW
    gw, url = await gateway(backends=[backend("llamacpp", llama, max_concurrent=1, max_queue=0)])
    await holders.hold(url, "gemma")
    assert admission_state(gw) == [(1, 0)]

    # The only slot is taken: embeddings and count_tokens both say so, each in its dialect.
    with pytest.raises(openai.RateLimitError):
        await clients("openai", url).embeddings.create(model="gemma", input="x")
    started = time.monotonic()
    with pytest.raises(anthropic.APIStatusError) as err:
        await clients("anthropic", url).messages.count_tokens(model="gemma", messages=HI)
    assert time.monotonic() - started < 0.5
    assert err.value.status_code == 529  # Anthropic's "overloaded", as for /v1/messages
    assert err.value.body["error"]["type"] == "overloaded_error"
    assert err.value.response.headers["Retry-After"] == "1"
    assert llama.requests_to("/v1/messages/count_tokens") == []

    await holders.close()
    assert await settled(gw) == [(0, 0)]
    counted = await clients("anthropic", url).messages.count_tokens(model="gemma", messages=HI)
    assert counted.input_tokens > 0
    assert await settled(gw) == [(0, 0)]


async def test_count_tokens_respects_an_open_breaker(fake_engine, gateway, clients) -> None:
    llama = await fake_engine("llamacpp", models=["gemma"])
    gw, url = await gateway(backends=[backend("llamacpp", llama)])
    breaker = gw.router.upstreams[0].breaker
    for _ in range(breaker.threshold):
        breaker.failure()
    assert breaker.state == "open"
    with pytest.raises(anthropic.APIStatusError) as err:
        await clients("anthropic", url).messages.count_tokens(model="gemma", messages=HI)
    assert err.value.status_code == 529
    assert llama.requests_to("/v1/messages/count_tokens") == []


async def test_a_malformed_embeddings_body_is_recorded(
    fake_engine, gateway, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="modelport.access")
    vllm = await fake_engine("vllm", models=["embed-1"])
    gw, url = await gateway(backends=[backend("vllm", vllm)])
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + "/v1/embeddings", json={"model": "embed-1"}) as resp,
    ):
        assert resp.status == 400
        request_id = resp.headers["x-request-id"]

    (line,) = access_lines(caplog)
    assert (line["request_id"], line["endpoint"], line["status"]) == (request_id, "embeddings", 400)
    assert line["error"] == "InvalidRequest"
    async with aiohttp.ClientSession() as session, session.get(url + "/metrics") as resp:
        text = await resp.text()
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    labels = frozenset({"model": "", "backend": "", "status": "400", "format": "openai"}.items())
    assert samples[("modelport_requests_total", labels)] == 1
    await gw.stop(grace_s=0)
    by_backend = {r.group: r for r in usage_totals(tmp_path / "usage.sqlite3", by="backend")}
    assert by_backend[""].errors == 1


async def test_embeddings_fall_back_on_model_not_found(fake_engine, gateway, clients) -> None:
    stale = await fake_engine("vllm", models=["embed-1"])
    spare = await fake_engine("localai", models=["embed-1"])
    _gw, url = await gateway(
        backends=[backend("vllm", stale, priority=5), backend("localai", spare)]
    )
    stale.models = []  # unloaded since the router last looked: it answers 404 now
    raw = await clients("openai", url).embeddings.with_raw_response.create(
        model="embed-1", input=["bye"], encoding_format="float"
    )
    assert raw.headers["x-modelport-backend"] == f"localai:{spare.url}"
    assert [d.embedding for d in raw.parse().data] == [fake_vector("bye")]
    assert len(stale.requests_to("/v1/embeddings")) == 1


async def test_embeddings_share_one_request_deadline(fake_engine, gateway, clients) -> None:
    """Both candidates hang: the request ends at its one deadline, not one per candidate."""
    one = await fake_engine("vllm", models=["embed-1"])
    two = await fake_engine("vllm", models=["embed-1"])
    for fake in (one, two):
        fake.route("POST", "/v1/embeddings", hang, group="embed", wire="openai")
    gw, url = await gateway(
        backends=[backend("vllm", one, name="one", priority=5), backend("vllm", two, name="two")],
        server={"request_timeout_s": 0.5},
    )
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as caught:
        await clients("openai", url).embeddings.create(model="embed-1", input="x")
    took = time.monotonic() - started
    assert caught.value.status_code == 504
    assert 0.4 <= took < 0.85  # one deadline (0.5 s), not 0.5 s for each of two candidates
    # Issue 11.1: no attempt starts after the deadline, so the failure is one's, the one
    # that was asked (it used to name two, tried after the deadline and never answering).
    assert caught.value.response.headers["x-modelport-backend"] == f"vllm:{one.url}"
    assert len(one.requests_to("/v1/embeddings")) == 1
    assert two.requests_to("/v1/embeddings") == []
    assert await settled(gw) == [(0, 0), (0, 0)]


async def hang(request: web.Request, body: Any) -> web.StreamResponse:
    """An engine that takes the request and never answers (until the client gives up)."""
    await asyncio.sleep(30)
    return web.Response(status=503)


async def test_an_error_names_the_backend_only_when_one_was_tried(fake_engine, gateway) -> None:
    vllm = await fake_engine("vllm", models=["m"])
    _gw, url = await gateway(backends=[backend("vllm", vllm)])
    async with aiohttp.ClientSession() as session:
        body = {"model": "nope", "messages": HI}
        async with session.post(url + "/v1/chat/completions", json=body) as resp:
            assert resp.status == 404
            assert "x-modelport-backend" not in resp.headers  # was there, empty
        vllm.replies.append(Reply(status=400))
        body = {"model": "m", "messages": HI}
        async with session.post(url + "/v1/chat/completions", json=body) as resp:
            assert resp.status == 400
            assert resp.headers["x-modelport-backend"] == f"vllm:{vllm.url}"
