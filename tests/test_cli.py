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


async def test_models_say_what_is_unknown(fake_engine) -> None:  # type: ignore[no-untyped-def]
    """vLLM's list says nothing of images or embeddings: `vision?`, and null in --json."""
    fake = await fake_engine("vllm", models=["qwen"])
    code, out, err = await modelport(
        "models", "--backend", f"vllm:{fake.url}", env={"COLUMNS": "200"}
    )
    assert code == 0, err
    assert "tools, vision?, thinking, embeddings?, json_schema" in out
    code, out, err = await modelport("models", "--backend", f"vllm:{fake.url}", "--json")
    assert code == 0, err
    (row,) = json.loads(out)
    assert row["capabilities"]["vision"] is None and row["capabilities"]["tools"] is True


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


async def test_discover_json_finds_a_fake(fake_engine) -> None:  # type: ignore[no-untyped-def]
    fake = await fake_engine("vllm", models=["qwen"], context_window=16384)
    port = fake.url.rsplit(":", 1)[1]
    code, out, err = await modelport("discover", "--json", "--port", port)
    assert code == 0, err
    found = [e for e in json.loads(out) if e["url"] == fake.url]
    assert len(found) == 1
    engine = found[0]
    assert engine["kind"] == "vllm" and engine["ready"] is True
    assert isinstance(engine["latency_ms"], float)
    assert engine["models"][0]["id"] == "qwen"
    assert engine["models"][0]["context_window"] == 16384


async def test_discover_table_and_nothing_found(fake_engine, refused_url) -> None:  # type: ignore[no-untyped-def]
    fake = await fake_engine("ollama", models=["llama3.2:1b"], context_window=131072)
    port = fake.url.rsplit(":", 1)[1]
    code, out, err = await modelport("discover", "--port", port)
    assert code == 0, err
    assert "ollama" in out and "llama3.2:1b" in out and "131,072" in out
    closed = refused_url.rsplit(":", 1)[1]
    code, out, _ = await modelport("discover", "--host", "127.0.0.2", "--port", closed)
    assert code == 0
    assert "No engine is running on 127.0.0.2" in out and "ollama serve" in out


async def test_embed_command(fake_engine) -> None:  # type: ignore[no-untyped-def]
    fake = await fake_engine("ollama", models=["nomic-embed-text"])
    code, out, err = await modelport(
        "embed", "-b", f"ollama:{fake.url}", "-m", "nomic-embed-text", "--json", "one", "two"
    )
    assert code == 0, err
    body = json.loads(out)
    assert body["object"] == "list" and [d["index"] for d in body["data"]] == [0, 1]
    assert fake.requests[-1].path == "/api/embed"
    assert fake.requests[-1].json["input"] == ["one", "two"]
    code, out, err = await modelport(
        "embed", "-b", f"ollama:{fake.url}", "-m", "nomic-embed-text", "hello"
    )
    assert code == 0 and "dims [" in out and "hello" in out


async def test_embed_unsupported_backend(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    code, _, err = await modelport(
        "embed", "-b", "anthropic", "-m", "claude", "x", env={"ANTHROPIC_API_KEY": "k"}
    )
    assert code == 1 and err.startswith("error: unsupported")


async def test_chat_and_models_on_native_ollama(fake_engine) -> None:  # type: ignore[no-untyped-def]
    fake = await fake_engine("ollama", models=["qwen3:0.6b"], context_window=40960)
    fake.default_reply = Reply(thinking="think", text="Native hello.")
    code, out, err = await modelport("chat", "-b", f"ollama:{fake.url}", "-m", "qwen3:0.6b", "hi")
    assert code == 0, err
    assert "Native hello." in out
    assert fake.requests[-1].path == "/api/chat"
    code, out, err = await modelport("models", "-b", f"ollama:{fake.url}", "--json")
    assert code == 0, err
    assert json.loads(out)[0]["context_window"] == 40960


async def test_chat_and_models_on_anthropic(fake_engine) -> None:  # type: ignore[no-untyped-def]
    fake = await fake_engine("anthropic", models=["claude-x"], api_key="sk-ant")
    fake.default_reply = Reply(text="Claude says hi.")
    env = {"ANTHROPIC_API_KEY": "sk-ant"}
    code, out, err = await modelport(
        "chat", "-b", f"anthropic:{fake.url}", "-m", "claude-x", "hi", env=env
    )
    assert code == 0, err
    assert "Claude says hi." in out
    assert fake.requests[-1].headers["x-api-key"] == "sk-ant"
    code, out, err = await modelport("models", "-b", f"anthropic:{fake.url}", "--json", env=env)
    assert code == 0, err
    assert json.loads(out)[0]["id"] == "claude-x"


async def test_anthropic_without_key_fails_before_io() -> None:
    code, _, err = await modelport("chat", "-b", "anthropic", "-m", "claude", "hi")
    assert code == 1 and "ANTHROPIC_API_KEY" in err


async def test_serve_with_a_bad_config_exits_2_naming_the_key(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "modelport.toml"
    bad.write_text('[[backends]]\nkind = "vllm"\nmax_concurrent = "eight"\n')
    code, _, err = await modelport("serve", "--config", str(bad))
    assert code == 2
    assert "backends[0].max_concurrent" in err and err.count("\n") == 1
    code, _, err = await modelport("config", "check", str(bad))
    assert code == 2 and "backends[0].max_concurrent" in err


async def test_serve_refuses_a_public_host_without_keys(tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "modelport.toml"
    config.write_text('[server]\nledger = "off"\n[discovery]\nenabled = false\n')
    code, _, err = await modelport("serve", "--config", str(config), "--host", "0.0.0.0")
    assert code == 2 and "key" in err.lower()


async def test_usage_totals_from_the_ledger(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from modelport.gateway.ledger import Ledger
    from modelport.records import RequestRecord

    path = tmp_path / "usage.sqlite3"
    ledger = Ledger(path)
    ledger.start()
    for model, backend, tokens in [
        ("qwen", "vllm:a", 10),
        ("qwen", "vllm:a", 5),
        ("llama", "x", 1),
    ]:
        ledger.record(
            RequestRecord(
                request_id="r", format="openai", endpoint="chat", model=model,
                backend=backend, status=200, input_tokens=tokens, output_tokens=2 * tokens,
            )
        )  # fmt: skip
    ledger.close()
    config = tmp_path / "modelport.toml"
    config.write_text(f'[server]\nledger = "{path}"\n')
    code, out, err = await modelport("usage", "--config", str(config), "--since", "1h")
    assert code == 0, err
    qwen = next(line for line in out.splitlines() if line.startswith("qwen"))
    assert qwen.split()[1:4] == ["2", "15", "30"]
    code, out, _ = await modelport("usage", "--config", str(config), "--by", "backend")
    assert code == 0 and "vllm:a" in out
    code, _, err = await modelport("usage", "--config", str(config), "--since", "soon")
    assert code == 2 and "soon" in err


async def test_serve_says_why_when_the_embedded_engine_cannot_be_installed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    empty = tmp_path / "bin"  # a PATH with no llama-server, no cmake, no compiler
    empty.mkdir()
    env = {
        "PATH": str(empty),
        "MODELPORT_CACHE_DIR": str(tmp_path / "cache"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
    }
    from modelport.backends.managed import free_port

    code, _, err = await modelport("serve", "--port", "0", env=env)
    assert code == 2 and err.strip() == "error: --port: expected a port in 1..65535, got 0"
    code, _, err = await modelport("serve", "--port", str(free_port()), env=env)
    assert code == 2, err
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith("error: no engine is running and the embedded one could not be")
    assert "cmake" in line
