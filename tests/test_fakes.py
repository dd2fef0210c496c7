"""The protocol fakes send the wire docs/wire.md describes.

Checked with a plain aiohttp.ClientSession and a hand parser, never with modelport's codecs.
"""

from __future__ import annotations

import asyncio
import base64
import json
import struct
from typing import Any

import aiohttp
import pytest

from tests.fakes import KINDS, FakeEngine, Reply, fake_vector

USER = [{"role": "user", "content": "hi"}]
AV = {"anthropic-version": "2023-06-01"}


# -- helpers -------------------------------------------------------------------------------


class Answer:
    def __init__(self, status: int, headers: Any, raw: bytes) -> None:
        self.status, self.headers, self.raw = status, headers, raw

    @property
    def json(self) -> Any:
        return json.loads(self.raw)

    @property
    def frames(self) -> list[tuple[str | None, str]]:
        """SSE frames as (event, data); comment lines skipped."""
        out: list[tuple[str | None, str]] = []
        for block in self.raw.decode().split("\n\n"):
            event, data = None, []
            for line in block.split("\n"):
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    data.append(line[6:])
            if data:
                out.append((event, "\n".join(data)))
        return out

    @property
    def chunks(self) -> list[dict[str, Any]]:
        """OpenAI-style data frames decoded, [DONE] left out."""
        return [json.loads(d) for _, d in self.frames if d != "[DONE]"]

    @property
    def events(self) -> list[dict[str, Any]]:
        """Anthropic events: the data objects, checked against their event names."""
        out = []
        for event, data in self.frames:
            obj = json.loads(data)
            if event != "error":
                assert obj["type"] == event
            out.append({"event": event, **obj} if event == "error" else obj)
        return out

    @property
    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.raw.decode().splitlines() if line]


async def call(
    fake: FakeEngine,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    **kw: Any,
) -> Answer:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, fake.url + path, json=body, headers=headers, **kw) as r,
    ):
        return Answer(r.status, r.headers, await r.read())


def chat(model: str = "m", stream: bool = True, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": USER, "stream": stream, **extra}


def usage_opts() -> dict[str, Any]:
    return {"stream_options": {"include_usage": True}}


def deltas(answer: Answer) -> list[dict[str, Any]]:
    return [c["choices"][0]["delta"] for c in answer.chunks if c.get("choices")]


def joined(answer: Answer, key: str) -> str:
    return "".join(d.get(key) or "" for d in deltas(answer))


def openai_path(kind: str) -> str:
    return "/api/v1" if kind in ("openrouter", "venice") else "/v1"


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


# -- llama.cpp -----------------------------------------------------------------------------


async def test_llamacpp_stream_bytes_match_the_capture(fake_engine) -> None:
    fake = await fake_engine("llamacpp")
    fake.default_reply = Reply(text="Say hello.", usage=(26, 12))
    answer = await call(
        fake, "POST", "/v1/chat/completions", chat(model="anything", **usage_opts())
    )
    raw = answer.raw
    assert raw.startswith(
        b'data: {"choices":[{"finish_reason":null,"index":0,"delta":{"role":"assistant",'
        b'"content":null}}],"created":'
    )
    assert b'"delta":{}}],' in raw  # the finish chunk
    assert b'data: {"choices":[],' in raw  # the usage chunk
    assert raw.endswith(b"data: [DONE]\n\n")
    assert b", " not in raw.replace(b"Say hello.", b"")  # compact JSON
    chunks = answer.chunks
    assert chunks[0]["object"] == "chat.completion.chunk" and chunks[0]["system_fingerprint"]
    assert chunks[-2]["choices"][0] == {"finish_reason": "stop", "index": 0, "delta": {}}
    assert chunks[-1]["usage"]["prompt_tokens_details"] == {"cached_tokens": 0}
    assert chunks[-1]["timings"]["predicted_n"] == 12
    assert {c["model"] for c in chunks} == {"anything"}  # single-model: any name answers
    assert len({c["id"] for c in chunks}) == 1


async def test_llamacpp_no_usage_chunk_without_include_usage(fake_engine) -> None:
    fake = await fake_engine("llamacpp")
    answer = await call(fake, "POST", "/v1/chat/completions", chat())
    assert all(c["choices"] for c in answer.chunks) and "usage" not in answer.chunks[-1]


async def test_llamacpp_thinking_and_tool_call_fragments(fake_engine) -> None:
    fake = await fake_engine("llamacpp")
    args = {"city": "Paris", "unit": "c"}
    fake.default_reply = Reply(
        thinking="Let me think.",
        text="",
        tool_calls=[("call_a", "get_weather", args), (None, "noop", {})],
    )
    answer = await call(fake, "POST", "/v1/chat/completions", chat())
    ds = deltas(answer)
    thinking = [i for i, d in enumerate(ds) if "reasoning_content" in d]
    calls = [i for i, d in enumerate(ds) if "tool_calls" in d]
    assert joined(answer, "reasoning_content") == "Let me think."
    assert max(thinking) < min(calls)
    frags = [d["tool_calls"][0] for d in ds if "tool_calls" in d]
    first = [f for f in frags if f["index"] == 0]
    assert first[0] == {
        "index": 0,
        "id": "call_a",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    assert all(
        set(f) == {"index", "function"} and set(f["function"]) == {"arguments"} for f in first[1:]
    )
    assert len(first) == 4  # name fragment, then the arguments in three pieces
    assert json.loads("".join(f["function"]["arguments"] for f in first)) == args
    second = [f for f in frags if f["index"] == 1]
    assert second[0]["id"] and second[0]["function"]["name"] == "noop"  # the engine minted an id
    assert answer.chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


async def test_llamacpp_whole_response(fake_engine) -> None:
    fake = await fake_engine("llamacpp")
    fake.default_reply = Reply(
        text="Hi.", thinking="hm", tool_calls=[("c1", "f", {"a": 1})], usage=(26, 12)
    )
    body = (await call(fake, "POST", "/v1/chat/completions", chat(stream=False))).json
    message = body["choices"][0]["message"]
    assert message["reasoning_content"] == "hm"
    assert message["tool_calls"] == [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}
    ]
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    assert body["timings"]["prompt_n"] == 26 and body["usage"]["total_tokens"] == 38


async def test_llamacpp_info_routes(fake_engine) -> None:
    fake = await fake_engine("llamacpp", models=["gemma.gguf"], context_window=2048)
    props = (await call(fake, "GET", "/props")).json
    assert props["default_generation_settings"]["n_ctx"] == 2048
    models = (await call(fake, "GET", "/v1/models")).json
    [entry] = models["data"]
    assert entry["owned_by"] == "llamacpp" and entry["meta"]["n_ctx_train"] == 2048 * 8
    assert entry["meta"]["n_ctx"] == 2048
    assert models["models"][0]["name"] == "gemma.gguf"  # the Ollama-style list beside `data`
    tags = await call(fake, "GET", "/api/tags")
    assert (
        tags.status == 200 and tags.json["models"][0]["model"] == "gemma.gguf"
    )  # the fingerprint trap
    alias = (await call(fake, "GET", "/models")).json  # llama-server serves it without /v1 too
    assert alias["data"][0]["meta"] == entry["meta"] and alias["models"] == models["models"]
    missing = await call(fake, "GET", "/nope")
    assert missing.status == 404
    assert missing.json == {
        "error": {"code": 404, "message": "File Not Found", "type": "not_found_error"}
    }


async def test_llamacpp_loading_then_ready(fake_engine) -> None:
    fake = await fake_engine("llamacpp", loading=True, api_key="k")
    loading_body = {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}
    health = await call(fake, "GET", "/health")
    assert (health.status, health.json) == (503, loading_body)
    chat_answer = await call(
        fake, "POST", "/v1/chat/completions", chat(), {"Authorization": "Bearer k"}
    )
    assert (chat_answer.status, chat_answer.json) == (503, loading_body)
    fake.loading = False
    health = await call(fake, "GET", "/health")  # public even with a key
    assert (health.status, health.json) == (200, {"status": "ok"})


async def test_llamacpp_auth_bearer_or_x_api_key(fake_engine) -> None:
    fake = await fake_engine("llamacpp", api_key="sk-l")
    path = "/v1/chat/completions"
    denied = await call(fake, "POST", path, chat(stream=False))
    assert denied.status == 401
    assert denied.json == {
        "error": {"code": 401, "message": "Invalid API Key", "type": "authentication_error"}
    }
    assert (
        await call(fake, "POST", path, chat(stream=False), {"Authorization": "Bearer sk-l"})
    ).status == 200
    assert (await call(fake, "POST", path, chat(stream=False), {"X-Api-Key": "sk-l"})).status == 200
    assert (await call(fake, "GET", "/v1/models")).status == 200  # public
    assert (await call(fake, "GET", "/props")).status == 401


async def test_llamacpp_context_overflow(fake_engine) -> None:
    fake = await fake_engine("llamacpp", context_window=16)
    body = {"model": "m", "messages": [{"role": "user", "content": "word " * 100}]}
    answer = await call(fake, "POST", "/v1/chat/completions", body)
    err = answer.json["error"]
    assert answer.status == 400 and err["type"] == "exceed_context_size_error"
    assert (
        err["n_ctx"] == 16
        and err["n_prompt_tokens"] > 16
        and "exceeds the available context" in err["message"]
    )
    assert fake.requests[-1].json == body


async def test_llamacpp_generates_from_garbage(fake_engine) -> None:
    fake = await fake_engine("llamacpp")
    answer = await call(fake, "POST", "/v1/messages", {"model": "m", "messages": "bad"})
    assert answer.status == 200 and answer.json["type"] == "message"


async def test_llamacpp_anthropic_stream_and_bare_error(fake_engine) -> None:
    fake = await fake_engine("llamacpp")
    fake.default_reply = Reply(
        text="Say hello.", thinking="hm", tool_calls=[("t1", "f", {"a": 1})], usage=(5, 12)
    )
    body = {"model": "m", "max_tokens": 12, "stream": True, "messages": USER}
    events = (await call(fake, "POST", "/v1/messages", body)).events
    names = [e["type"] for e in events]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert "ping" not in names
    assert events[0]["message"]["usage"] == {
        "cache_read_input_tokens": 0,
        "input_tokens": 5,
        "output_tokens": 0,
    }
    starts = [e["content_block"]["type"] for e in events if e["type"] == "content_block_start"]
    assert starts == ["thinking", "text", "tool_use"]
    assert events[-2]["delta"]["stop_reason"] == "tool_use" and events[-2]["usage"] == {
        "output_tokens": 12
    }
    fake.default_reply = Reply(text="x" * 20, fail_after_chunks=2, error_message="slot died")
    answer = await call(fake, "POST", "/v1/messages", body)
    event, data = answer.frames[-1]
    assert event == "error"
    assert json.loads(data) == {"code": 500, "message": "slot died", "type": "server_error"}
    assert b"message_stop" not in answer.raw
    count = await call(fake, "POST", "/v1/messages/count_tokens", {"model": "m", "messages": USER})
    assert count.status == 200 and count.json["input_tokens"] >= 1


# -- vLLM ----------------------------------------------------------------------------------


async def test_vllm_info_routes(fake_engine) -> None:
    fake = await fake_engine("vllm", models=["base", "sql-lora"], context_window=32768, api_key="k")
    health = await call(fake, "GET", "/health")
    assert (health.status, health.raw) == (200, b"")
    assert (await call(fake, "GET", "/version")).json == {"version": "0.11.0"}
    assert (await call(fake, "GET", "/v1/models")).json == {"error": "Unauthorized"}
    models = (await call(fake, "GET", "/v1/models", headers={"Authorization": "Bearer k"})).json[
        "data"
    ]
    assert [(m["id"], m["owned_by"], m["max_model_len"], m["parent"]) for m in models] == [
        ("base", "vllm", 32768, None),
        ("sql-lora", "vllm", None, "base"),
    ]
    fake.loading = True
    assert (await call(fake, "GET", "/health")).status == 503
    missing = await call(fake, "GET", "/nope")
    assert (missing.status, missing.json) == (404, {"detail": "Not Found"})


async def test_vllm_reasoning_and_continuous_usage(fake_engine) -> None:
    fake = await fake_engine("vllm", models=["m"])
    fake.default_reply = Reply(thinking="hmm", text="ok!", usage=(3, 2))
    opts = {"stream_options": {"include_usage": True, "continuous_usage_stats": True}}
    answer = await call(fake, "POST", "/v1/chat/completions", chat(**opts))
    assert joined(answer, "reasoning") == "hmm" and not joined(answer, "reasoning_content")
    assert all("usage" in c for c in answer.chunks)
    assert answer.chunks[-1]["usage"]["completion_tokens"] == 2
    plain = await call(fake, "POST", "/v1/chat/completions", chat())
    assert not any("usage" in c for c in plain.chunks)


async def test_vllm_errors(fake_engine) -> None:
    fake = await fake_engine("vllm", models=["m"])
    missing = await call(fake, "POST", "/v1/chat/completions", chat(model="x"))
    assert missing.status == 404
    assert missing.json == {
        "error": {
            "message": "The model `x` does not exist.",
            "type": "NotFoundError",
            "param": None,
            "code": 404,
        }
    }
    fake.default_reply = Reply(text="abcdefgh", fail_after_chunks=1, error_message="engine died")
    answer = await call(fake, "POST", "/v1/chat/completions", chat())
    assert answer.status == 200
    assert answer.frames[-2:] == [
        (
            None,
            '{"error":{"message":"engine died","type":"BadRequestError","param":null,"code":400}}',
        ),
        (None, "[DONE]"),  # vLLM sends [DONE] after its error frame
    ]
    messages = await call(
        fake, "POST", "/v1/messages", {"model": "x", "max_tokens": 5, "messages": USER}
    )
    assert messages.status == 404 and messages.json["error"]["type"] == "NotFoundError"


async def test_vllm_refuses_max_tokens_beyond_the_context(fake_engine) -> None:
    fake = await fake_engine("vllm", models=["m"], context_window=100)
    answer = await call(fake, "POST", "/v1/chat/completions", chat(max_tokens=100))
    assert answer.status == 400 and answer.json["error"]["type"] == "BadRequestError"
    assert "maximum context length is 100 tokens" in answer.json["error"]["message"]
    assert "100 in the completion" in answer.json["error"]["message"]


async def test_vllm_old_flat_errors_and_reasoning_content(fake_engine) -> None:
    fake = await fake_engine("vllm-old", models=["m"])
    missing = await call(fake, "POST", "/v1/chat/completions", chat(model="x"))
    assert missing.json == {
        "object": "error",
        "message": "The model `x` does not exist.",
        "type": "NotFoundError",
        "param": None,
        "code": 404,
    }
    fake.default_reply = Reply(thinking="hmm")
    assert (
        joined(await call(fake, "POST", "/v1/chat/completions", chat()), "reasoning_content")
        == "hmm"
    )


# -- LM Studio -----------------------------------------------------------------------------


async def test_lmstudio_answers_anything_and_lists_state(fake_engine) -> None:
    fake = await fake_engine(
        "lmstudio",
        models=["qwen3-4b", "text-embedding-nomic"],
        not_loaded=["text-embedding-nomic"],
        context_window=8192,
    )
    root = await call(fake, "GET", "/")
    assert root.status == 200 and root.headers["Content-Type"].startswith("text/html")
    assert (await call(fake, "GET", "/health")).status == 200  # never fingerprint on it
    v0 = (await call(fake, "GET", "/api/v0/models")).json["data"]
    assert [(m["id"], m["type"], m["state"]) for m in v0] == [
        ("qwen3-4b", "llm", "loaded"),
        ("text-embedding-nomic", "embeddings", "not-loaded"),
    ]
    assert v0[0]["loaded_context_length"] == 8192 and v0[0]["max_context_length"] == 8192 * 8
    v1 = (await call(fake, "GET", "/api/v1/models")).json["models"]
    assert v1[0]["loaded_instances"][0]["config"]["context_length"] == 8192
    assert v1[0]["capabilities"] == {"vision": False, "trained_for_tool_use": True}
    assert v1[1]["loaded_instances"] == []


async def test_lmstudio_model_rules(fake_engine) -> None:
    one = await fake_engine("lmstudio", models=["a"])
    answer = await call(one, "POST", "/v1/chat/completions", chat(model="whatever", stream=False))
    assert answer.status == 200 and answer.json["model"] == "a"  # one loaded: the name is ignored
    two = await fake_engine("lmstudio", models=["a", "b"])
    missing = await call(two, "POST", "/v1/chat/completions", chat(model="c", stream=False))
    assert missing.status == 404 and missing.json["error"]["code"] == "model_not_found"
    none = await fake_engine("lmstudio", models=[])
    empty = await call(none, "POST", "/v1/chat/completions", chat(model="c", stream=False))
    assert empty.status == 400 and "No models loaded" in empty.json["error"]["message"]


# -- LocalAI -------------------------------------------------------------------------------


async def test_localai(fake_engine) -> None:
    fake = await fake_engine("localai", models=["m"], api_key="k")
    assert (await call(fake, "GET", "/readyz")).status == 200
    auth = {"Authorization": "Bearer k"}
    assert (await call(fake, "GET", "/models", headers=auth)).json["data"] == [
        {"id": "m", "object": "model"}
    ]
    missing = await call(fake, "POST", "/v1/chat/completions", chat(model="x"), auth)
    assert (
        missing.status == 500 and missing.json["error"]["code"] == 500
    )  # it tries to load anything
    assert (await call(fake, "POST", "/v1/chat/completions", chat())).status == 401


# -- Ollama --------------------------------------------------------------------------------


async def test_ollama_info_routes(fake_engine) -> None:
    fake = await fake_engine(
        "ollama", models=["qwen3:8b", "llama3.2"], not_loaded=["llama3.2"], context_window=8192
    )
    root = await call(fake, "GET", "/")
    assert (root.status, root.raw) == (200, b"Ollama is running")
    assert (await call(fake, "HEAD", "/")).status == 200
    assert "version" in (await call(fake, "GET", "/api/version")).json
    tags = (await call(fake, "GET", "/api/tags")).json["models"]
    assert [t["name"] for t in tags] == ["qwen3:8b", "llama3.2:latest"]
    assert tags[0]["details"]["family"] == "qwen3"
    show = (await call(fake, "POST", "/api/show", {"model": "qwen3:8b"})).json
    assert show["model_info"]["general.architecture"] == "qwen3"
    assert show["model_info"]["qwen3.context_length"] == 8192 * 8
    assert show["capabilities"] == ["completion", "thinking", "tools"]
    ps = (await call(fake, "GET", "/api/ps")).json["models"]
    assert [(m["name"], m["context_length"]) for m in ps] == [("qwen3:8b", 8192)]
    missing = await call(fake, "POST", "/api/show", {"model": "nope"})
    assert (missing.status, missing.json) == (404, {"error": "model 'nope' not found"})
    unknown = await call(fake, "GET", "/nope")
    assert (unknown.status, unknown.raw) == (404, b"404 page not found")


async def test_ollama_native_chat_stream(fake_engine) -> None:
    fake = await fake_engine("ollama", models=["qwen3"])
    fake.default_reply = Reply(
        thinking="hmm",
        text="Hi there",
        usage=(11, 4),
        tool_calls=[(None, "get", {"a": 1}), ("call_x", "put", {})],
    )
    body = {
        "model": "qwen3",
        "think": True,
        "messages": [{"role": "user", "content": "hi", "images": ["QUJD"]}],
    }
    answer = await call(fake, "POST", "/api/chat", body)
    assert answer.headers["Content-Type"].startswith("application/x-ndjson")
    lines = answer.lines
    assert "".join(line["message"].get("thinking", "") for line in lines) == "hmm"
    assert "".join(line["message"]["content"] for line in lines) == "Hi there"
    [calls] = [line["message"]["tool_calls"] for line in lines if "tool_calls" in line["message"]]
    assert calls == [
        {"function": {"index": 0, "name": "get", "arguments": {"a": 1}}},
        {"id": "call_x", "function": {"index": 1, "name": "put", "arguments": {}}},
    ]
    last = lines[-1]
    assert last["done"] is True and all(line["done"] is False for line in lines[:-1])
    assert (last["done_reason"], last["prompt_eval_count"], last["eval_count"]) == ("stop", 11, 4)
    no_think = (await call(fake, "POST", "/api/chat", {"model": "qwen3", "messages": USER})).lines
    assert not any("thinking" in line["message"] for line in no_think)


async def test_ollama_native_whole_errors_and_embed(fake_engine) -> None:
    fake = await fake_engine("ollama", models=["m"])
    whole = (
        await call(fake, "POST", "/api/chat", {"model": "m", "messages": USER, "stream": False})
    ).json
    assert whole["message"]["content"] == "Hello from the fake." and whole["done"] is True
    missing = await call(fake, "POST", "/api/chat", {"model": "x", "messages": USER})
    assert (missing.status, missing.json) == (404, {"error": "model 'x' not found"})
    fake.default_reply = Reply(text="abcdefgh", fail_after_chunks=1, error_message="runner crashed")
    failed = await call(fake, "POST", "/api/chat", {"model": "m", "messages": USER})
    assert failed.status == 200 and failed.lines[-1] == {"error": "runner crashed"}
    assert not any(line.get("done") for line in failed.lines)
    embed = (await call(fake, "POST", "/api/embed", {"model": "m", "input": ["a", "b"]})).json
    assert embed["embeddings"] == [fake_vector("a"), fake_vector("b")]
    fake.loading = True
    assert (await call(fake, "POST", "/api/chat", {"model": "m", "messages": USER})).status == 503


async def test_ollama_openai_surface(fake_engine) -> None:
    fake = await fake_engine("ollama", models=["m"])
    fake.default_reply = Reply(thinking="hm", text="ok", tool_calls=[(None, "f", {"a": 1})])
    answer = await call(fake, "POST", "/v1/chat/completions", chat(**usage_opts()))
    ds = deltas(answer)
    assert all(d["role"] == "assistant" for d in ds)  # Ollama repeats the role in every delta
    assert joined(answer, "reasoning") == "hm" and not joined(answer, "reasoning_content")
    [call_delta] = [d for d in ds if "tool_calls" in d]
    [tool] = call_delta["tool_calls"]
    assert tool["id"].startswith("call_") and tool["index"] == 0
    assert tool["function"] == {"name": "f", "arguments": '{"a":1}'}  # complete in one chunk
    assert answer.chunks[-1]["choices"] == [] and answer.chunks[-1]["usage"]["total_tokens"] == 12
    missing = await call(fake, "POST", "/v1/chat/completions", chat(model="x"))
    assert missing.status == 404
    assert missing.json == {
        "error": {
            "message": "model 'x' not found",
            "type": "not_found_error",
            "param": None,
            "code": None,
        }
    }
    messages = await call(fake, "POST", "/v1/messages", {"model": "x", "messages": USER})
    assert messages.status == 404 and messages.json["type"] == "error"
    assert messages.json["error"]["type"] == "not_found_error"
    assert (
        await call(fake, "POST", "/v1/messages/count_tokens", {"model": "m", "messages": USER})
    ).status == 404


# -- OpenRouter ----------------------------------------------------------------------------


async def test_openrouter_stream_comments_reasoning_and_error(fake_engine) -> None:
    fake = await fake_engine("openrouter", models=["openai/gpt-4o"], api_key="or")
    auth = {"Authorization": "Bearer or", "HTTP-Referer": "https://x.test"}
    fake.default_reply = Reply(thinking="hm", text="abcdefgh")
    answer = await call(fake, "POST", "/api/v1/chat/completions", chat(model="openai/gpt-4o"), auth)
    assert answer.raw.startswith(b": OPENROUTER PROCESSING\n\n")
    assert answer.raw.count(b": OPENROUTER PROCESSING\n\n") >= 2  # one mid-stream too
    assert joined(answer, "reasoning") == "hm" and joined(answer, "content") == "abcdefgh"
    assert fake.requests[-1].headers["HTTP-Referer"] == "https://x.test"
    fake.default_reply = Reply(text="abcdefgh", fail_after_chunks=1, error_message="provider down")
    failed = await call(fake, "POST", "/api/v1/chat/completions", chat(model="openai/gpt-4o"), auth)
    assert failed.status == 200 and b"[DONE]" not in failed.raw
    last = json.loads(failed.frames[-1][1])
    assert last["error"] == {"code": 502, "message": "provider down"}


async def test_openrouter_models_and_errors(fake_engine) -> None:
    fake = await fake_engine(
        "openrouter", models=["qwen/qwen3-vl"], api_key="or", context_window=65536
    )
    [model] = (await call(fake, "GET", "/api/v1/models")).json["data"]
    assert (
        model["context_length"] == 65536 and model["top_provider"]["max_completion_tokens"] == 16384
    )
    assert "tools" in model["supported_parameters"]
    assert model["architecture"]["input_modalities"] == ["text", "image"]
    auth = {"Authorization": "Bearer or"}
    bad = await call(fake, "POST", "/api/v1/chat/completions", chat(model="x/y"), auth)
    assert bad.status == 400 and bad.json["error"]["message"] == "x/y is not a valid model ID"
    fake.default_reply = Reply(status=402)
    broke = await call(fake, "POST", "/api/v1/chat/completions", chat(model="qwen/qwen3-vl"), auth)
    assert broke.status == 402 and broke.json["error"]["code"] == 402
    assert (
        broke.json["error"]["message"].startswith("Insufficient credits")
        and "metadata" in broke.json["error"]
    )
    fake.default_reply = Reply(status=429, retry_after="7")
    slow = await call(fake, "POST", "/api/v1/chat/completions", chat(model="qwen/qwen3-vl"), auth)
    assert (slow.status, slow.headers["Retry-After"]) == (429, "7")
    assert slow.json == {"error": {"code": 429, "message": "boom", "metadata": {}}}
    denied = await call(fake, "POST", "/api/v1/chat/completions", chat(model="qwen/qwen3-vl"))
    assert denied.status == 401 and denied.json["error"]["code"] == 401


# -- Venice --------------------------------------------------------------------------------


async def test_venice(fake_engine) -> None:
    fake = await fake_engine(
        "venice",
        models=["venice-uncensored", "qwen3-think", "text-embed-bge"],
        api_key="v",
        context_window=32768,
    )
    text = (await call(fake, "GET", "/api/v1/models?type=text")).json["data"]
    assert [m["id"] for m in text] == ["venice-uncensored", "qwen3-think"]
    spec = text[1]["model_spec"]
    assert text[1]["context_length"] == 32768 and spec["maxCompletionTokens"] == 8192
    assert spec["offline"] is False and spec["capabilities"]["supportsReasoning"] is True
    assert {"supportsFunctionCalling", "supportsVision"} <= set(spec["capabilities"])
    embeds = (await call(fake, "GET", "/api/v1/models?type=embedding")).json["data"]
    assert [m["id"] for m in embeds] == ["text-embed-bge"]
    auth = {"Authorization": "Bearer v"}
    extra = {"venice_parameters": {"include_venice_system_prompt": False}}
    fake.default_reply = Reply(thinking="hm")
    answer = await call(
        fake, "POST", "/api/v1/chat/completions", chat(model="qwen3-think", **extra), auth
    )
    assert joined(answer, "reasoning_content") == "hm"
    assert fake.requests[-1].json["venice_parameters"] == {"include_venice_system_prompt": False}
    denied = await call(fake, "POST", "/api/v1/chat/completions", chat(model="qwen3-think"))
    assert (denied.status, denied.json) == (401, {"error": "Authentication failed"})
    missing = await call(fake, "POST", "/api/v1/chat/completions", chat(model="x"), auth)
    assert missing.status == 404 and isinstance(missing.json["error"], str)


# -- OpenAI --------------------------------------------------------------------------------


async def test_openai(fake_engine) -> None:
    fake = await fake_engine("openai", models=["gpt-4o-mini"], api_key="sk")
    auth = {"Authorization": "Bearer sk"}
    models = (await call(fake, "GET", "/v1/models", headers=auth)).json["data"]
    assert models[0]["id"] == "gpt-4o-mini" and "context_length" not in models[0]
    fake.default_reply = Reply(thinking="hidden", text="hi")
    answer = await call(
        fake, "POST", "/v1/chat/completions", chat(model="gpt-4o-mini", **usage_opts()), auth
    )
    assert all("usage" in c for c in answer.chunks) and answer.chunks[0]["usage"] is None
    assert answer.chunks[0]["choices"][0]["delta"] == {
        "role": "assistant",
        "content": "",
        "refusal": None,
    }
    assert b"hidden" not in answer.raw  # chat completions never stream OpenAI's reasoning
    missing = await call(fake, "POST", "/v1/chat/completions", chat(model="gpt-9"), auth)
    assert missing.status == 404 and missing.json["error"]["code"] == "model_not_found"
    assert set(missing.json["error"]) == {"message", "type", "param", "code"}
    denied = await call(fake, "POST", "/v1/chat/completions", chat(model="gpt-4o-mini"))
    assert denied.status == 401 and denied.json["error"]["code"] == "invalid_api_key"
    fake.default_reply = Reply(text="abcdefgh", fail_after_chunks=1, error_message="oops")
    failed = await call(fake, "POST", "/v1/chat/completions", chat(model="gpt-4o-mini"), auth)
    assert failed.frames[-1] == (None, '{"error": {"message": "oops", "type": "server_error"}}')


# -- Anthropic -----------------------------------------------------------------------------


def anthropic_headers(key: str = "ak") -> dict[str, str]:
    return {"x-api-key": key, **AV}


async def test_anthropic_stream_events(fake_engine) -> None:
    fake = await fake_engine("anthropic", models=["claude-x"], api_key="ak")
    fake.default_reply = Reply(
        thinking="Consider.",
        text="Answer.",
        usage=(21, 6),
        chunk_chars=5,
        tool_calls=[("toolu_1", "get_weather", {"city": "Rome"})],
    )
    body = {"model": "claude-x", "max_tokens": 64, "stream": True, "messages": USER}
    answer = await call(fake, "POST", "/v1/messages", body, anthropic_headers())
    assert answer.headers["Content-Type"].startswith("text/event-stream")
    events = answer.events
    names = [e["type"] for e in events]
    assert names[:2] == ["message_start", "ping"] and names.count("ping") == 2
    assert names[-2:] == ["message_delta", "message_stop"]
    blocks = [e["content_block"] for e in events if e["type"] == "content_block_start"]
    assert blocks == [
        {"type": "thinking", "thinking": "", "signature": ""},
        {"type": "text", "text": ""},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}},
    ]
    by_type: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        if e["type"] == "content_block_delta":
            by_type.setdefault(e["delta"]["type"], []).append(e)
    assert "".join(e["delta"]["thinking"] for e in by_type["thinking_delta"]) == "Consider."
    assert [e["delta"]["signature"] for e in by_type["signature_delta"]] == ["fake-signature"]
    assert "".join(e["delta"]["text"] for e in by_type["text_delta"]) == "Answer."
    partial = [e["delta"]["partial_json"] for e in by_type["input_json_delta"]]
    assert partial[0] == "" and json.loads("".join(partial)) == {"city": "Rome"}
    assert [e["index"] for e in by_type["input_json_delta"]] == [2] * len(partial)
    final = events[-2]
    assert final["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert final["usage"]["output_tokens"] == 6 and final["usage"]["input_tokens"] == 21
    assert events[0]["message"]["usage"]["input_tokens"] == 21


async def test_anthropic_whole_message_and_count(fake_engine) -> None:
    fake = await fake_engine("anthropic", models=["claude-x"], api_key="ak", context_window=200_000)
    body = {"model": "claude-x", "max_tokens": 64, "messages": USER}
    message = (await call(fake, "POST", "/v1/messages", body, anthropic_headers())).json
    assert message["type"] == "message" and message["content"] == [
        {"type": "text", "text": "Hello from the fake."}
    ]
    assert message["stop_reason"] == "end_turn" and message["usage"]["output_tokens"] == 5
    count = await call(
        fake,
        "POST",
        "/v1/messages/count_tokens",
        {"model": "claude-x", "messages": USER},
        anthropic_headers(),
    )
    assert count.json["input_tokens"] >= 1
    models = (await call(fake, "GET", "/v1/models", headers=anthropic_headers())).json
    assert (
        models["data"][0]["max_input_tokens"] == 200_000
        and models["data"][0]["max_tokens"] == 50_000
    )
    assert models["has_more"] is False


async def test_anthropic_headers_and_errors(fake_engine) -> None:
    fake = await fake_engine("anthropic", models=["claude-x"], api_key="ak")
    body = {"model": "claude-x", "max_tokens": 64, "messages": USER}
    no_version = await call(fake, "POST", "/v1/messages", body, {"x-api-key": "ak"})
    assert no_version.status == 400 and no_version.json["error"]["type"] == "invalid_request_error"
    no_key = await call(fake, "POST", "/v1/messages", body, AV)
    assert no_key.status == 401 and no_key.json["error"]["type"] == "authentication_error"
    bearer = await call(fake, "POST", "/v1/messages", body, {"Authorization": "Bearer ak", **AV})
    assert bearer.status == 401
    no_max = await call(
        fake, "POST", "/v1/messages", {"model": "claude-x", "messages": USER}, anthropic_headers()
    )
    assert no_max.status == 400 and "max_tokens" in no_max.json["error"]["message"]
    fake.default_reply = Reply(status=529)
    busy = await call(fake, "POST", "/v1/messages", body, anthropic_headers())
    assert busy.status == 529 and busy.json["type"] == "error"
    assert busy.json["error"] == {"type": "overloaded_error", "message": "Overloaded"}
    assert busy.json["request_id"].startswith("req_") and busy.headers["request-id"].startswith(
        "req_"
    )
    fake.default_reply = Reply(text="x" * 20, fail_after_chunks=2, error_message="Overloaded")
    failed = await call(fake, "POST", "/v1/messages", {**body, "stream": True}, anthropic_headers())
    event, data = failed.frames[-1]
    assert event == "error" and json.loads(data) == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    missing = await call(
        fake, "POST", "/v1/messages", {**body, "model": "claude-nope"}, anthropic_headers()
    )
    assert missing.status == 404 and missing.json["error"]["message"] == "model: claude-nope"


# -- error shapes by Reply.status ----------------------------------------------------------


STATUS_CASES = [
    ("llamacpp", 400, lambda b: b["error"]["type"] == "exceed_context_size_error"),
    (
        "llamacpp",
        503,
        lambda b: (
            b["error"] == {"code": 503, "message": "Loading model", "type": "unavailable_error"}
        ),
    ),
    (
        "vllm",
        404,
        lambda b: (
            b["error"]["type"] == "NotFoundError" and "does not exist" in b["error"]["message"]
        ),
    ),
    ("vllm", 401, lambda b: b == {"error": "Unauthorized"}),
    (
        "vllm-old",
        500,
        lambda b: (
            b
            == {
                "object": "error",
                "message": "boom",
                "type": "InternalServerError",
                "param": None,
                "code": 500,
            }
        ),
    ),
    ("openai", 400, lambda b: b["error"]["code"] == "context_length_exceeded"),
    ("openai", 429, lambda b: b["error"]["code"] == "rate_limit_exceeded"),
    ("lmstudio", 404, lambda b: b["error"]["code"] == "model_not_found"),
    ("localai", 500, lambda b: b == {"error": {"code": 500, "message": "boom", "type": ""}}),
    ("ollama", 404, lambda b: b["error"]["type"] == "not_found_error"),
    ("venice", 500, lambda b: b == {"error": "boom"}),
    (
        "openrouter",
        503,
        lambda b: b["error"]["code"] == 503 and b["error"]["metadata"]["provider_name"],
    ),
]


@pytest.mark.parametrize(("kind", "status", "check"), STATUS_CASES)
async def test_reply_status_in_the_engine_shape(
    fake_engine, kind: str, status: int, check: Any
) -> None:
    fake = await fake_engine(kind, models=["m"])
    fake.default_reply = Reply(status=status, retry_after="3")
    answer = await call(fake, "POST", openai_path(kind) + "/chat/completions", chat())
    assert answer.status == status and answer.headers["Retry-After"] == "3"
    assert check(answer.json), answer.json


async def test_custom_error_message_and_body(fake_engine) -> None:
    fake = await fake_engine("vllm", models=["m"])
    fake.replies.extend(
        [
            Reply(status=404, error_message="gone fishing"),
            Reply(status=502, error_body="<html>Bad Gateway</html>"),
        ]
    )
    custom = await call(fake, "POST", "/v1/chat/completions", chat())
    assert (
        custom.json["error"]["message"] == "gone fishing"
        and custom.json["error"]["type"] == "NotFoundError"
    )
    raw = await call(fake, "POST", "/v1/chat/completions", chat())
    assert (raw.status, raw.raw) == (502, b"<html>Bad Gateway</html>")


# -- faults --------------------------------------------------------------------------------


async def test_replies_are_popped_in_order_then_the_default(fake_engine) -> None:
    fake = await fake_engine("vllm", models=["m"])
    fake.replies.extend([Reply(text="one"), Reply(text="two")])
    fake.default_reply = Reply(text="default")
    got = []
    for _ in range(3):
        got.append((await call(fake, "POST", "/v1/chat/completions", chat(stream=False))).json)
    assert [g["choices"][0]["message"]["content"] for g in got] == ["one", "two", "default"]
    assert len(fake.replies) == 0
    missing = await call(fake, "POST", "/v1/chat/completions", chat(model="x"))
    assert missing.status == 404  # a refused request consumes no reply


@pytest.mark.parametrize(
    ("kind", "path"),
    [("llamacpp", "/v1/chat/completions"), ("anthropic", "/v1/messages"), ("ollama", "/api/chat")],
)
async def test_drop_after_chunks_cuts_the_body(fake_engine, kind: str, path: str) -> None:
    fake = await fake_engine(kind, models=["m"])
    fake.default_reply = Reply(text="x" * 40, drop_after_chunks=2)
    body = {"model": "m", "max_tokens": 9, "stream": True, "messages": USER}
    received = b""
    with pytest.raises(aiohttp.ClientPayloadError):
        async with (
            aiohttp.ClientSession() as session,
            session.post(fake.url + path, json=body, headers=AV) as r,
        ):
            assert r.status == 200
            async for piece in r.content.iter_any():
                received += piece
    assert received.count(b"xxxx") == 2
    assert (
        b"[DONE]" not in received
        and b"message_stop" not in received
        and b'"done":true' not in received
    )
    fake.default_reply = Reply(drop_after_chunks=0)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await call(fake, "POST", path, {**body, "stream": False}, AV)
    assert fake.disconnects == 0  # the server hung up, not the client


async def test_disconnect_is_counted_when_the_client_goes_away(fake_engine) -> None:
    fake = await fake_engine("vllm", models=["m"])
    fake.default_reply = Reply(text="x" * 400, chunk_chars=1, delay_s=0.01)
    async with (
        aiohttp.ClientSession() as session,
        session.post(fake.url + "/v1/chat/completions", json=chat()) as r,
    ):
        await r.content.readline()  # one frame, then the client goes away
    assert await fake.wait_disconnects(1) == 1
    fake.default_reply = Reply(text="quick")
    await call(fake, "POST", "/v1/chat/completions", chat())
    await asyncio.sleep(0.05)
    assert fake.disconnects == 1  # a stream read to its end is not a disconnect


async def test_hang_until_the_client_times_out(fake_engine) -> None:
    fake = await fake_engine("ollama", models=["m"])
    fake.default_reply = Reply(hang=True)
    with pytest.raises(asyncio.TimeoutError):
        await call(
            fake,
            "POST",
            "/api/chat",
            {"model": "m", "messages": USER},
            timeout=aiohttp.ClientTimeout(total=0.2),
        )
    assert await fake.wait_disconnects(1) == 1


async def test_hanging_request_does_not_block_stop() -> None:
    fake = FakeEngine("llamacpp")
    await fake.start()
    fake.default_reply = Reply(hang=True)
    session = aiohttp.ClientSession()
    pending = asyncio.ensure_future(session.post(fake.url + "/v1/chat/completions", json=chat()))
    await asyncio.sleep(0.1)
    await asyncio.wait_for(fake.stop(), 3)
    try:  # released at stop: a 503 if it still gets out, else a closed connection
        async with await pending as r:
            assert r.status == 503
    except aiohttp.ClientError:
        pass
    await session.close()


async def test_delay_between_chunks(fake_engine) -> None:
    fake = await fake_engine("llamacpp")
    fake.default_reply = Reply(text="abcd", chunk_chars=1, delay_s=0.05)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await call(fake, "POST", "/v1/chat/completions", chat())
    assert loop.time() - started >= 0.2


async def test_fail_after_chunks_without_streaming_is_a_500(fake_engine) -> None:
    fake = await fake_engine("llamacpp")
    fake.default_reply = Reply(fail_after_chunks=1, error_message="slot died")
    answer = await call(fake, "POST", "/v1/chat/completions", chat(stream=False))
    assert answer.status == 500 and answer.json["error"]["message"] == "slot died"


async def test_fail_after_more_chunks_than_there_are_fails_before_the_finish(fake_engine) -> None:
    fake = await fake_engine("llamacpp")
    fake.default_reply = Reply(text="abcd", fail_after_chunks=99)
    answer = await call(fake, "POST", "/v1/chat/completions", chat())
    assert joined(answer, "content") == "abcd"
    assert "error" in answer.chunks[-1] and b"[DONE]" not in answer.raw
    assert not any(c.get("choices") and c["choices"][0]["finish_reason"] for c in answer.chunks)


async def test_loading_toggles_chat(fake_engine) -> None:
    fake = await fake_engine("vllm", models=["m"], loading=True)
    assert (await call(fake, "POST", "/v1/chat/completions", chat())).status == 503
    fake.loading = False
    assert (await call(fake, "POST", "/v1/chat/completions", chat())).status == 200


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
