"""Every fake kind lists models, records requests, streams, answers whole and embeds."""

from __future__ import annotations

import base64
import struct

import aiohttp
import pytest

from tests.fakes import KINDS, FakeEngine, Reply, fake_vector
from tests.fakes_check.helpers import AV, call, chat, joined, openai_path, usage_opts

# -- every kind ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_every_kind_lists_models_and_records_requests(fake_engine, kind: str) -> None:
    fake = await fake_engine(kind, models=["m1"])
    path = "/v1/models" if kind == "anthropic" else openai_path(kind) + "/models"
    answer = await call(fake, "GET", path, headers={"X-Probe": "yes", **AV})
    assert answer.status == 200
    ids = [e.get("id") for e in answer.json["data"]]
    assert ids == (["m1:latest"] if kind == "ollama" else ["m1"])
    rec = fake.requests[-1]
    assert (rec.method, rec.path, rec.json) == ("GET", path, None)
    assert rec.headers["x-probe"] == "yes" and rec.headers["X-Probe"] == "yes"
    assert isinstance(rec.headers, dict)


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "anthropic"])
async def test_every_openai_kind_streams_text_and_ends(fake_engine, kind: str) -> None:
    fake = await fake_engine(kind, models=["m"])
    fake.default_reply = Reply(text="The quick brown fox.", usage=(11, 4))
    answer = await call(fake, "POST", openai_path(kind) + "/chat/completions", chat(**usage_opts()))
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("text/event-stream")
    assert joined(answer, "content") == "The quick brown fox."
    assert answer.raw.endswith(b"data: [DONE]\n\n")
    finals = [c for c in answer.chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert [c["choices"][0]["finish_reason"] for c in finals] == ["stop"]
    usage = answer.chunks[-1]
    assert usage["choices"] == [] and usage["usage"]["prompt_tokens"] == 11
    assert usage["usage"]["completion_tokens"] == 4 and usage["usage"]["total_tokens"] == 15


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "anthropic"])
async def test_every_openai_kind_answers_whole(fake_engine, kind: str) -> None:
    fake = await fake_engine(kind, models=["m"])
    fake.default_reply = Reply(text="Whole.", usage=(9, 3))
    answer = await call(fake, "POST", openai_path(kind) + "/chat/completions", chat(stream=False))
    body = answer.json
    assert answer.status == 200 and body["object"] == "chat.completion"
    [choice] = body["choices"]
    assert choice["message"] == {**choice["message"], "role": "assistant", "content": "Whole."}
    assert choice["finish_reason"] == "stop"
    assert (body["usage"]["prompt_tokens"], body["usage"]["completion_tokens"]) == (9, 3)


# -- embeddings ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind", ["llamacpp", "vllm", "ollama", "openai", "openrouter", "venice", "localai"]
)
async def test_openai_embeddings_are_deterministic(fake_engine, kind: str) -> None:
    fake = await fake_engine(kind, models=["m"])
    body = {"model": "m", "input": ["a", "b"]}
    answer = (await call(fake, "POST", openai_path(kind) + "/embeddings", body)).json
    assert [d["embedding"] for d in answer["data"]] == [fake_vector("a"), fake_vector("b")]
    assert [d["index"] for d in answer["data"]] == [0, 1] and answer["usage"]["prompt_tokens"] == 2
    b64 = (
        await call(
            fake,
            "POST",
            openai_path(kind) + "/embeddings",
            {**body, "encoding_format": "base64", "dimensions": 4},
        )
    ).json
    floats = struct.unpack("<4f", base64.b64decode(b64["data"][0]["embedding"]))
    assert floats == pytest.approx(fake_vector("a", 4), abs=1e-6)


# -- fixtures ------------------------------------------------------------------------------


async def test_refused_url_refuses(refused_url: str) -> None:
    with pytest.raises(aiohttp.ClientConnectorError):
        async with aiohttp.ClientSession() as session:
            await session.get(refused_url + "/health")


async def test_context_manager_and_unknown_kind() -> None:
    async with FakeEngine("venice") as fake:
        assert fake.url.startswith("http://127.0.0.1:") and fake.v1 == fake.url + "/api/v1"
    with pytest.raises(ValueError, match="unknown kind"):
        FakeEngine("nope")
