"""`modelport config check`: what `serve` would do, never showing a secret."""

from __future__ import annotations

from pathlib import Path

from modelport.config import Config, load_config, parse_config, render_check, with_overrides
from tests.config.helpers import EXAMPLE, SECRET, write

# render_check


def test_render_check_of_the_example(dirs: Path) -> None:
    path = write(dirs / "modelport.toml", EXAMPLE)
    config, found = load_config(path, env={})
    env = {"MODELPORT_API_KEY": f"{SECRET},{SECRET}-2", "VLLM_KEY": "vllm-secret-value"}
    text = render_check(config, found, env)
    assert text == (
        f"config: {path}\n"
        "listen: http://127.0.0.1:7878\n"
        "auth: on\n"
        "  MODELPORT_API_KEY: set (2 keys)\n"
        "body cap: 32 MB\n"
        "request timeout: 600 s\n"
        "client timeouts: header 60 s, body 60 s, keep-alive idle 75 s\n"
        "connections: at most 1024\n"
        "engine answers: 16 MB a frame, 64 MB a whole body\n"
        "shutdown grace: 10 s\n"
        f"ledger: {dirs / 'xdg-data' / 'modelport' / 'usage.sqlite3'}\n"
        "log level: info\n"
        "discovery: on, host 127.0.0.1, ports 11434, 8080, 9931, 8000, 1234, every 30 s\n"
        "backends: 1\n"
        "  local (vllm)\n"
        "    url: http://127.0.0.1:8000\n"
        "    key: VLLM_KEY (set)\n"
        "    models: qwen\n"
        "    limits: max_concurrent 8, max_queue 64, queue_timeout_s 30\n"
        "    priority: 0\n"
        "aliases:\n"
        "  chat -> local/qwen, openrouter/meta-llama/llama-3.1-8b-instruct\n"
        "embedded engine: not used (backends are configured)\n"
    )
    assert SECRET not in text
    assert "vllm-secret-value" not in text


def test_render_check_defaults_and_refusal(dirs: Path) -> None:
    config = with_overrides(Config(), host="0.0.0.0")
    text = render_check(config, None, {})
    assert text.startswith("no config file: defaults\nlisten: http://0.0.0.0:7878\n")
    assert "auth: off (no key variable is set)\n  MODELPORT_API_KEY: not set\n" in text
    assert "  serve would not start: refusing to serve on 0.0.0.0" in text
    assert "backends: none configured\n" in text
    assert text.endswith(
        "aliases: none\nembedded engine: served as gemma-3-270m when discovery finds no engine\n"
    )


def test_render_check_backends_never_show_secrets() -> None:
    config = parse_config(
        "[server]\n"
        'api_keys_env = ["GW_KEY"]\n'
        'ledger = "off"\n'
        "[discovery]\n"
        "enabled = false\n"
        "[[backends]]\n"
        'kind = "openrouter"\n'
        'api_key_env = "OR_KEY"\n'
        "priority = 5\n"
        "[[backends]]\n"
        'kind = "anthropic"\n'
        'url = "http://me:hunter2@127.0.0.1:8080"\n'
        "[[backends]]\n"
        'kind = "openai"\n'
        'api_key_env = "MISSING_KEY"\n'
        "[[backends]]\n"
        'kind = "ollama"\n'
        "[[backends]]\n"
        'kind = "mock"\n'
    )
    env = {
        "GW_KEY": SECRET,
        "OR_KEY": "or-secret",
        "ANTHROPIC_API_KEY": "ant-secret",
        "OLLAMA_HOST": "10.0.0.5:11434",
    }
    text = render_check(config, None, env)
    for secret in (SECRET, "or-secret", "ant-secret", "hunter2"):
        assert secret not in text
    assert "  GW_KEY: set\n" in text
    assert "ledger: off\n" in text
    assert "discovery: off\n" in text
    assert "  openrouter (openrouter, cloud)\n    url: default (https://openrouter.ai)\n" in text
    assert "    key: OR_KEY (set)\n" in text
    assert "    priority: 5\n" in text
    assert "  anthropic (anthropic)\n    url: http://me:***@127.0.0.1:8080\n" in text
    assert "    key: none configured; the backend reads ANTHROPIC_API_KEY (set)\n" in text
    assert "    key: MISSING_KEY (not set: its requests will fail with AuthError)\n" in text
    assert "    url: default, from OLLAMA_HOST (10.0.0.5:11434)\n" in text
    assert "    url: none (scripted in-process backend)\n" in text
    assert "    models: all it lists\n" in text


def test_the_readme_config_example_is_valid_and_checks() -> None:
    """The example users copy must parse, and `config check` must describe every part."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    start = readme.index("```toml\n[server]") + len("```toml\n")
    example = readme[start : readme.index("```", start)]
    config = parse_config(example)
    assert [b.label for b in config.backends] == ["local", "openrouter", "coder"]
    coder = config.backends[2]
    assert (coder.kind, coder.alias, coder.ctx_size, coder.idle_unload_s) == (
        "managed",
        "qwen-coder",
        8192,
        600,
    )
    text = render_check(config, None, env={"VLLM_KEY": "sekrit-value"})
    assert "ctx_size 8192 over 2 slots (4096 per request); unload: after 600 s idle" in text
    assert "served as qwen-coder" in text
    assert "sekrit-value" not in text


def test_render_check_shows_first_byte_limits_when_set() -> None:
    config = parse_config(
        '[server]\nfirst_byte_timeout_s = 30\nledger = "off"\n'
        '[[backends]]\nkind = "vllm"\nfirst_byte_timeout_s = 240\n'
    )
    text = render_check(config, None, {})
    assert "request timeout: 600 s\nfirst-byte timeout: 30 s per attempt\n" in text
    assert "queue_timeout_s 30, first_byte_timeout_s 240\n" in text
    assert "first-byte timeout" not in render_check(parse_config(""), None, {})
