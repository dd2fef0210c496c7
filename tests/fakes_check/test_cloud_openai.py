"""The OpenRouter, Venice and OpenAI fakes: streams, model lists, errors."""

from __future__ import annotations

import json

from tests.fakes import Reply
from tests.fakes_check.helpers import call, chat, joined, usage_opts

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
