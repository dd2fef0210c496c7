"""Metrics, access log, ledger, model listings, health, readiness and OpenAPI."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import openai
import pytest

from modelport.gateway.ledger import usage_totals
from tests.fakes import Reply
from tests.gateway.helpers import backend, get, post, sample, scrape

# == 10. observability ===========================================================================


async def test_metrics_access_log_and_ledger(
    fake_engine, gateway, clients, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="modelport.access")
    vllm = await fake_engine("vllm", models=["qwen"])
    vllm.default_reply = Reply(text="the secret answer", usage=(7, 5))
    gw, url = await gateway(backends=[backend("vllm", vllm)])
    b = f"vllm:{vllm.url}"
    oc = clients("openai", url)
    ac = clients("anthropic", url)
    prompt = [{"role": "user", "content": "the secret prompt"}]

    ids = []
    raw = await oc.chat.completions.with_raw_response.create(model="qwen", messages=prompt)
    ids.append(raw.headers["x-request-id"])
    raw = await oc.chat.completions.with_raw_response.create(
        model="qwen", messages=prompt, stream=True
    )
    ids.append(raw.headers["x-request-id"])
    _ = [c async for c in raw.parse()]
    raw = await ac.messages.with_raw_response.create(model="qwen", max_tokens=9, messages=prompt)
    ids.append(raw.headers["x-request-id"])
    async with ac.messages.stream(model="qwen", max_tokens=9, messages=prompt) as stream:
        await stream.get_final_message()
    with pytest.raises(openai.NotFoundError):
        await oc.chat.completions.create(model="nope", messages=prompt)

    status, headers, text = await get(url, "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain")
    s = scrape(text.decode())
    req = "modelport_requests_total"
    assert sample(s, req, model="qwen", backend=b, status="200", format="openai") == 2
    assert sample(s, req, model="qwen", backend=b, status="200", format="anthropic") == 2
    assert sample(s, req, model="", backend="", status="404", format="openai") == 1
    assert sample(s, "modelport_tokens_total", model="qwen", backend=b, direction="in") == 28
    assert sample(s, "modelport_tokens_total", model="qwen", backend=b, direction="out") == 20
    ttft = "modelport_time_to_first_token_seconds_count"
    assert sample(s, ttft, model="qwen", backend=b) == 4
    assert sample(s, "modelport_backend_ready", backend=b) == 1
    assert sample(s, "modelport_in_flight", backend=b) == 0

    lines = [r for r in caplog.records if r.name == "modelport.access"]
    assert len(lines) == 5
    fields = [json.loads(r.getMessage()) for r in lines]
    assert [f["request_id"] for f in fields[:3]] == [ids[0], ids[1], ids[2]]
    assert [(f["format"], f["stream"], f["status"]) for f in fields] == [
        ("openai", False, 200),
        ("openai", True, 200),
        ("anthropic", False, 200),
        ("anthropic", True, 200),
        ("openai", False, 404),
    ]
    assert [(f["tokens_in"], f["tokens_out"]) for f in fields[:4]] == [(7, 5)] * 4
    assert all(f["passthrough"] for f in fields[:4])
    for record in lines:
        assert "secret" not in record.getMessage()

    await gw.stop(grace_s=0)
    (row,) = usage_totals(tmp_path / "usage.sqlite3", by="model")[:1]
    assert (row.group, row.requests, row.input_tokens, row.output_tokens) == ("qwen", 4, 28, 20)
    by_backend = {r.group: r for r in usage_totals(tmp_path / "usage.sqlite3", by="backend")}
    assert by_backend[b].requests == 4
    assert by_backend[""].errors == 1


async def test_rejected_requests_are_logged_and_counted(
    fake_engine, gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="modelport.access")
    vllm = await fake_engine("vllm", models=["qwen"])
    _gw, url = await gateway(backends=[backend("vllm", vllm)])
    status, headers, _ = await post(url, "/v1/chat/completions", {"model": "qwen", "messages": 1})
    assert status == 400
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "modelport.access"]
    assert [(f["request_id"], f["status"]) for f in lines] == [(headers["x-request-id"], 400)]
    _, _, text = await get(url, "/metrics")
    s = scrape(text.decode())
    assert (
        sample(s, "modelport_requests_total", model="", backend="", status="400", format="openai")
        == 1
    )


async def test_models_listing_in_both_shapes(fake_engine, gateway, clients) -> None:
    vllm = await fake_engine("vllm", models=["qwen"], context_window=8192)
    claude = await fake_engine("anthropic", models=["claude-x"], api_key="k")
    _gw, url = await gateway(
        backends=[
            backend("vllm", vllm, name="gpu"),
            backend("anthropic", claude, name="claude", api_key_env="K"),
        ],
        aliases={"fast": ["qwen"]},
        env={"K": "k"},
    )
    listing = await clients("openai", url).models.list()
    rows = {m.id: m for m in listing.data}
    assert set(rows) == {"qwen", "claude-x", "fast"}
    qwen = rows["qwen"].model_dump()
    assert (qwen["owned_by"], qwen["context_window"], qwen["backend"]) == (
        "gpu",
        8192,
        f"vllm:{vllm.url}",
    )
    assert qwen["capabilities"]["tools"] is True
    assert rows["claude-x"].owned_by == "claude"
    assert rows["fast"].model_dump()["targets"] == ["qwen"]

    page = await clients("anthropic", url).models.list()
    ids = [m.id for m in page.data]
    assert sorted(ids) == ["claude-x", "qwen"]
    by_id = {m.id: m.model_dump() for m in page.data}
    assert by_id["qwen"]["type"] == "model"
    assert by_id["qwen"]["max_input_tokens"] == 8192


async def test_health_ready_and_openapi(fake_engine, gateway) -> None:
    llama = await fake_engine("llamacpp", models=["gemma.gguf"])
    _gw, url = await gateway(backends=[backend("llamacpp", llama)])
    status, _, raw = await get(url, "/health")
    assert status == 200
    status, _, raw = await get(url, "/ready")
    assert status == 200
    ready = json.loads(raw)
    assert ready["status"] == "ready"
    assert ready["backends"][0]["ready"] is True
    status, headers, raw = await get(url, "/openapi.json")
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    doc = json.loads(raw)
    assert doc["openapi"].startswith("3.")
    for path in (
        "/v1/chat/completions",
        "/v1/messages",
        "/v1/messages/count_tokens",
        "/v1/embeddings",
        "/v1/models",
        "/health",
        "/ready",
        "/metrics",
    ):
        assert path in doc["paths"], path


async def test_ready_is_503_while_every_backend_loads(fake_engine, gateway) -> None:
    llama = await fake_engine("llamacpp", models=["gemma.gguf"], loading=True)
    gw, url = await gateway(backends=[backend("llamacpp", llama)])
    status, _, raw = await get(url, "/health")
    assert status == 200
    status, _, raw = await get(url, "/ready")
    assert status == 503
    body = json.loads(raw)
    assert body["status"] == "not ready"
    assert body["backends"][0]["ready"] is False
    # Once it has loaded, a refresh makes it ready.
    llama.loading = False
    await gw.router.refresh()
    status, _, raw = await get(url, "/ready")
    assert status == 200
