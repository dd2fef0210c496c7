"""The Ollama fake: native /api routes and its OpenAI surface."""

from __future__ import annotations

from tests.fakes import Reply, fake_vector
from tests.fakes_check.helpers import USER, call, chat, deltas, joined, usage_opts

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
