"""Shared by the config tests: the full example file, a secret, writing a file."""

from __future__ import annotations

from pathlib import Path

EXAMPLE = """\
[server]
host = "127.0.0.1"
port = 7878
api_keys_env = ["MODELPORT_API_KEY"]
max_body_mb = 32
request_timeout_s = 600
shutdown_grace_s = 10
ledger = ""
log_level = "info"

[discovery]
enabled = true
refresh_s = 30
host = "127.0.0.1"
ports = []

[[backends]]
name = "local"
kind = "vllm"
url = "http://127.0.0.1:8000"
api_key_env = "VLLM_KEY"
models = ["qwen"]
max_concurrent = 8
max_queue = 64
queue_timeout_s = 30
priority = 0

[aliases]
chat = ["local/qwen", "openrouter/meta-llama/llama-3.1-8b-instruct"]
"""

SECRET = "sk-test-0123456789abcdef"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
