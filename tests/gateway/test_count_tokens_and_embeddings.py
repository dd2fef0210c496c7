"""count_tokens and embeddings through the gateway."""

from __future__ import annotations

import base64
import json
import logging
import struct

import anthropic
import pytest

from tests.fakes import fake_vector
from tests.gateway.helpers import HI, backend, post

# == 12. count_tokens and embeddings ============================================================


async def test_count_tokens(fake_engine, gateway, clients) -> None:
    claude = await fake_engine("anthropic", models=["claude-x"], api_key="k")
    llama = await fake_engine("llamacpp", models=["gemma.gguf"])
    _gw, url = await gateway(
        backends=[
            backend("anthropic", claude, api_key_env="K"),
            backend("llamacpp", llama),
        ],
        env={"K": "k"},
    )
    ac = clients("anthropic", url)
    messages = [{"role": "user", "content": "x" * 40}]
    counted = await ac.messages.count_tokens(model="claude-x", messages=messages, system="abcdefgh")
    assert counted.input_tokens == 13  # the fake's estimate: 48 characters / 4 + 1
    (sent,) = claude.requests_to("/v1/messages/count_tokens")
    assert sent.json["model"] == "claude-x"
    assert "max_tokens" not in sent.json

    # llama-server answers /v1/messages/count_tokens too.
    counted = await ac.messages.count_tokens(model="gemma.gguf", messages=messages)
    assert counted.input_tokens == 11
    assert len(llama.requests_to("/v1/messages/count_tokens")) == 1

    status, _, raw = await post(url, "/v1/messages/count_tokens", {"model": "x", "messages": 1})
    assert status == 400
    assert json.loads(raw)["error"]["type"] == "invalid_request_error"


async def test_count_tokens_skips_backends_that_cannot_count(fake_engine, gateway, clients) -> None:
    vllm = await fake_engine("vllm", models=["gemma"])
    llama = await fake_engine("llamacpp", models=["gemma"])
    _gw, url = await gateway(
        backends=[backend("vllm", vllm, priority=5), backend("llamacpp", llama)],
        aliases={"only-vllm": ["vllm/gemma"]},
    )
    ac = clients("anthropic", url)
    messages = [{"role": "user", "content": "x" * 40}]
    # vLLM is tried first and cannot count; llama-server serves the same model and can.
    raw = await ac.messages.with_raw_response.count_tokens(model="gemma", messages=messages)
    assert raw.headers["x-modelport-backend"] == f"llamacpp:{llama.url}"
    assert (await raw.parse()).input_tokens == 11
    # With no backend that can count, a clear 400 in Anthropic's shape.
    with pytest.raises(anthropic.BadRequestError) as err:
        await ac.messages.count_tokens(model="only-vllm", messages=messages)
    assert err.value.body["error"]["type"] == "invalid_request_error"
    assert "count tokens" in err.value.body["error"]["message"]
    assert vllm.requests_to("/v1/messages/count_tokens") == []


async def test_count_tokens_is_logged_and_counted(
    fake_engine, gateway, clients, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="modelport.access")
    llama = await fake_engine("llamacpp", models=["gemma"])
    _gw, url = await gateway(backends=[backend("llamacpp", llama)])
    await clients("anthropic", url).messages.count_tokens(model="gemma", messages=HI)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "modelport.access"]
    assert [(f["endpoint"], f["status"], f["format"]) for f in lines] == [
        ("count_tokens", 200, "anthropic")
    ]


async def test_embeddings_floats_and_base64(fake_engine, gateway, clients) -> None:
    vllm = await fake_engine("vllm", models=["embed-1"])
    _gw, url = await gateway(backends=[backend("vllm", vllm)])
    oc = clients("openai", url)
    texts = ["hello world", "bye"]

    raw = await oc.embeddings.with_raw_response.create(
        model="embed-1", input=texts, encoding_format="float"
    )
    result = raw.parse()
    assert raw.headers["x-modelport-backend"] == f"vllm:{vllm.url}"
    assert [d.embedding for d in result.data] == [fake_vector(t) for t in texts]
    assert [d.index for d in result.data] == [0, 1]
    assert result.model == "embed-1"
    assert (result.usage.prompt_tokens, result.usage.total_tokens) == (3, 3)

    result = await oc.embeddings.create(model="embed-1", input="hello world")  # SDK: base64
    (vector,) = [d.embedding for d in result.data]
    assert vector == pytest.approx(fake_vector("hello world"), abs=1e-6)

    status, _, raw = await post(
        url, "/v1/embeddings", {"model": "embed-1", "input": "bye", "encoding_format": "base64"}
    )
    assert status == 200
    packed = base64.b64decode(json.loads(raw)["data"][0]["embedding"])
    assert list(struct.unpack("<8f", packed)) == pytest.approx(fake_vector("bye"), abs=1e-6)
