"""The `modelport` command, run as a real process against protocol fakes."""

from __future__ import annotations

import asyncio
import json
import os
import sys

from tests.fakes import Reply

ENV = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}


async def modelport(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "modelport.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**ENV, **(env or {})},
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_models_json(fake_engine) -> None:  # type: ignore[no-untyped-def]
    fake = await fake_engine("vllm", models=["qwen", "llama"], context_window=32768)
    code, out, err = await modelport("models", "--backend", f"vllm:{fake.url}", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert [(r["id"], r["context_window"]) for r in rows][:2] == [("qwen", 32768), ("llama", 32768)]


async def test_models_table(fake_engine) -> None:  # type: ignore[no-untyped-def]
    fake = await fake_engine("llamacpp", models=["gemma"], context_window=2048)
    code, out, err = await modelport("models", "--backend", f"llamacpp:{fake.url}")
    assert code == 0, err
    assert "gemma" in out and "2,048" in out


async def test_chat_streams_text_to_the_terminal(fake_engine) -> None:  # type: ignore[no-untyped-def]
    fake = await fake_engine("vllm", models=["qwen"])
    fake.default_reply = Reply(thinking="hmm", text="Hello there, human.")
    code, out, err = await modelport("chat", "--backend", f"vllm:{fake.url}", "-m", "qwen", "hello")
    assert code == 0, err
    assert "Hello there, human." in out
    assert "\x1b[2mhmm" in out  # thinking dimmed
    assert fake.requests[-1].json["messages"] == [{"role": "user", "content": "hello"}]


async def test_chat_json_is_a_chat_completion(fake_engine) -> None:  # type: ignore[no-untyped-def]
    fake = await fake_engine("llamacpp", models=["m"])
    fake.default_reply = Reply(
        text="Calling.", tool_calls=[("call_9", "get_weather", {"city": "Oslo"})], usage=(12, 8)
    )
    code, out, err = await modelport(
        "chat", "-b", f"llamacpp:{fake.url}", "-m", "m", "--json", "hi"
    )
    assert code == 0, err
    completion = json.loads(out)
    assert completion["object"] == "chat.completion"
    choice = completion["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Calling."
    call = choice["message"]["tool_calls"][0]
    assert call["id"] == "call_9" and call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Oslo"}
    assert completion["usage"]["prompt_tokens"] == 12
    assert completion["usage"]["completion_tokens"] == 8


async def test_chat_model_not_found_exits_non_zero(fake_engine) -> None:  # type: ignore[no-untyped-def]
    fake = await fake_engine("vllm", models=["qwen"])
    fake.default_reply = Reply(status=404, error_message="The model `nope` does not exist.")
    code, _out, err = await modelport("chat", "-b", f"vllm:{fake.url}", "-m", "nope", "hi")
    assert code == 1
    assert err.strip().count("\n") == 0
    assert err.startswith("error: model not found") and "nope" in err


async def test_chat_mid_stream_failure_says_why(fake_engine) -> None:  # type: ignore[no-untyped-def]
    fake = await fake_engine("openrouter", models=["m"], api_key="sk-1")
    fake.default_reply = Reply(text="a" * 30, fail_after_chunks=2, error_message="provider crashed")
    code, out, err = await modelport(
        "chat", "-b", f"openrouter:{fake.url}", "-m", "m", "hi", env={"OPENROUTER_API_KEY": "sk-1"}
    )
    assert code == 1
    assert "provider crashed" in err
    assert "sk-1" not in err + out


async def test_chat_unreachable(refused_url) -> None:  # type: ignore[no-untyped-def]
    code, _, err = await modelport("chat", "-b", f"vllm:{refused_url}", "-m", "m", "hi")
    assert code == 1 and err.startswith("error: cannot reach the engine")


async def test_cloud_without_key_fails_before_io() -> None:
    code, _, err = await modelport("chat", "-b", "openai", "-m", "gpt-4o", "hi")
    assert code == 1 and "OPENAI_API_KEY" in err


async def test_unknown_kind() -> None:
    code, _, err = await modelport("models", "-b", "nonsense")
    assert code == 1 and "unknown backend kind" in err
