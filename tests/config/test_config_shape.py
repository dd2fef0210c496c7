"""The config's type checks walk the schema; kind rules come from the kind table."""

from __future__ import annotations

import msgspec
import pytest

from modelport.config import BackendConfig, Config, ConfigError, check_config, parse_config
from modelport.config.shape import check_shape

FULL = """\
[server]
host = "127.0.0.1"
port = 7878
api_keys_env = ["A", "B"]
max_body_mb = 1
request_timeout_s = 2.5
shutdown_grace_s = 0
ledger = "off"
log_level = "debug"
embedded = false
max_managed = 2

[discovery]
enabled = false
refresh_s = 5
host = "localhost"
ports = [9000]

[[backends]]
name = "engine"
kind = "managed"
api_key_env = "K"
models = ["m"]
max_concurrent = 1
max_queue = 0
queue_timeout_s = 1
priority = -1
model = "/m.gguf"
alias = "m"
llama_server = "/bin/llama-server"
ctx_size = 1024
threads = 4
parallel = 1
chat_template = "chatml"
idle_unload_s = 60
args = ["--flash-attn"]

[aliases]
chat = ["m"]
"""


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    return str(info.value)


def test_every_field_of_the_schema_passes_the_walk() -> None:
    """Each type the schema uses is one the walk knows (it raises TypeError otherwise)."""
    config = parse_config(FULL)
    assert config.backends[0].args == ("--flash-attn",)
    assert config.server.request_timeout_s == 2.5
    assert msgspec.convert(msgspec.to_builtins(config), Config) == config


def test_the_walk_builds_messages_from_the_schema_not_from_msgspec_text() -> None:
    with pytest.raises(ConfigError) as info:
        check_shape({"backends": [{"kind": "vllm", "max_queue": 1.5}]}, Config)
    assert (info.value.key, info.value.problem) == (
        "backends[0].max_queue",
        "expected int, got float",
    )
    with pytest.raises(ConfigError) as info:
        check_shape({"server": {"hots": "x"}}, Config)
    assert (info.value.key, info.value.problem) == (
        "server.hots",
        "unknown key (did you mean 'host'?)",
    )


def test_a_string_array_says_so() -> None:
    """Changed: every array of strings is named as such (it was "expected array, got str"
    everywhere but in [aliases])."""
    assert error_of('[server]\napi_keys_env = "MODELPORT_API_KEY"\n') == (
        "modelport.toml: server.api_keys_env: expected array of strings, got str"
    )
    assert error_of("[discovery]\nports = 9000\n") == (
        "modelport.toml: discovery.ports: expected array, got int"
    )


@pytest.mark.parametrize(("field", "value"), [("ctx_size", "4096"), ("parallel", "2")])
def test_engine_knobs_are_refused_elsewhere_even_at_their_defaults(field: str, value: str) -> None:
    """Changed: a knob the kind does not take is refused when the file sets it, whatever
    its value (before, ctx_size and parallel passed unnoticed on any kind)."""
    assert error_of(f'[[backends]]\nkind = "vllm"\n{field} = {value}\n') == (
        f'modelport.toml: backends[0].{field}: only for kind = "managed"'
    )


def test_a_config_built_in_code_is_checked_by_its_non_default_fields() -> None:
    check_config(Config(backends=(BackendConfig(kind="vllm", ctx_size=4096),)))
    with pytest.raises(ConfigError) as info:
        check_config(Config(backends=(BackendConfig(kind="vllm", ctx_size=8192),)))
    assert (info.value.key, info.value.problem) == (
        "backends[0].ctx_size",
        'only for kind = "managed"',
    )
