"""The vLLM, LM Studio and LocalAI fakes: info routes, reasoning, usage, errors."""

from __future__ import annotations

from tests.fakes import Reply
from tests.fakes_check.helpers import USER, call, chat, joined

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
