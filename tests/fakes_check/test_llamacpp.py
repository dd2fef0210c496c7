"""The llama.cpp fake: capture-exact stream bytes, info routes, loading, auth, errors."""

from __future__ import annotations

import json

from tests.captures import CAPTURES
from tests.fakes import Reply
from tests.fakes_check.helpers import USER, call, chat, deltas, joined, usage_opts

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


async def test_llamacpp_anthropic_matched_stop_is_the_capture(fake_engine) -> None:
    """The stop fields llama-server's /v1/messages sent for a matched stop sequence
    (docs/captures/llamacpp_anthropic_*_stop.*): "end_turn" beside the sequence, and
    message_delta's usage with output_tokens only."""
    captured_stream = (CAPTURES / "llamacpp_anthropic_stream_stop.sse").read_text()
    (captured_delta,) = [
        json.loads(line[len("data: ") :])
        for line in captured_stream.splitlines()
        if line.startswith("data: ") and '"message_delta"' in line
    ]
    captured_whole = json.loads((CAPTURES / "llamacpp_anthropic_response_stop.json").read_text())
    fake = await fake_engine("llamacpp")
    fake.default_reply = Reply(text="<|", stop_sequence="im_", usage=(31, 4))
    body = {"model": "m", "max_tokens": 30, "stop_sequences": ["im_"], "messages": USER}
    events = (await call(fake, "POST", "/v1/messages", {**body, "stream": True})).events
    assert events[-2] == captured_delta
    whole = (await call(fake, "POST", "/v1/messages", body)).json
    assert (whole["stop_reason"], whole["stop_sequence"]) == (
        captured_whole["stop_reason"],
        captured_whole["stop_sequence"],
    )
    assert set(whole["usage"]) == set(captured_whole["usage"])
