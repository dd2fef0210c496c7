"""modelport.toml: API keys from variables, command-line overrides, the loopback rule."""

from __future__ import annotations

import pytest

from modelport.config import (
    BackendConfig,
    Config,
    ConfigError,
    ServerConfig,
    api_keys,
    backend_key,
    is_loopback,
    parse_config,
    requires_keys,
    with_overrides,
)
from tests.config.helpers import EXAMPLE, SECRET

# Keys


def test_api_keys_from_several_variables_and_comma_lists() -> None:
    config = Config(server=ServerConfig(api_keys_env=("MAIN_KEY", "TEAM_KEYS", "UNSET", "EMPTY")))
    env = {"MAIN_KEY": "k-main", "TEAM_KEYS": " k-a , k-b,,k-c ", "EMPTY": ""}
    assert api_keys(config, env) == {
        "k-main": "MAIN_KEY",
        "k-a": "TEAM_KEYS#1",
        "k-b": "TEAM_KEYS#2",
        "k-c": "TEAM_KEYS#3",
    }


def test_api_keys_first_variable_wins_a_shared_value() -> None:
    config = Config(server=ServerConfig(api_keys_env=("A", "B")))
    assert api_keys(config, {"A": "same", "B": "same,other"}) == {"same": "A", "other": "B#2"}


def test_api_keys_none_configured_or_set() -> None:
    assert api_keys(Config(server=ServerConfig(api_keys_env=())), {"MODELPORT_API_KEY": "x"}) == {}
    assert api_keys(Config(), {}) == {}
    assert api_keys(Config(), {"MODELPORT_API_KEY": "x"}) == {"x": "MODELPORT_API_KEY"}


def test_backend_key() -> None:
    configured = BackendConfig(kind="openai", api_key_env="WORK_OPENAI")
    assert backend_key(configured, {"WORK_OPENAI": "k", "OPENAI_API_KEY": "other"}) == "k"
    # "" keeps the backend from falling back to OPENAI_API_KEY.
    assert backend_key(configured, {"OPENAI_API_KEY": "other"}) == ""
    assert backend_key(BackendConfig(kind="vllm"), {"OPENAI_API_KEY": "other"}) is None


# Overrides and the loopback rule


def test_with_overrides() -> None:
    config = parse_config(EXAMPLE)
    moved = with_overrides(config, host="0.0.0.0", port=9000)
    assert (moved.server.host, moved.server.port) == ("0.0.0.0", 9000)
    assert moved.server.api_keys_env == config.server.api_keys_env
    assert moved.backends == config.backends
    assert (config.server.host, config.server.port) == ("127.0.0.1", 7878)
    assert with_overrides(config) == config
    assert with_overrides(config, port=1).server.host == "127.0.0.1"


def test_with_overrides_checks_values() -> None:
    with pytest.raises(ConfigError) as info:
        with_overrides(Config(), port=70000)
    assert str(info.value) == "--port: expected a port in 1..65535, got 70000"
    with pytest.raises(ConfigError) as info:
        with_overrides(Config(), host="")
    assert str(info.value) == "--host: expected a host name or address, got ''"


def test_requires_keys_off_loopback() -> None:
    open_all = with_overrides(Config(), host="0.0.0.0")
    assert requires_keys(open_all, {}) == (
        "refusing to serve on 0.0.0.0 without an API key: set MODELPORT_API_KEY "
        "(server.api_keys_env), or bind 127.0.0.1"
    )
    assert requires_keys(open_all, {"MODELPORT_API_KEY": ""}) is not None
    assert requires_keys(open_all, {"MODELPORT_API_KEY": SECRET}) is None


def test_requires_keys_without_any_key_variable() -> None:
    config = Config(server=ServerConfig(host="0.0.0.0", api_keys_env=()))
    assert requires_keys(config, {"MODELPORT_API_KEY": SECRET}) == (
        "refusing to serve on 0.0.0.0 without an API key: name a key variable in "
        'server.api_keys_env (e.g. ["MODELPORT_API_KEY"]) and set it, or bind 127.0.0.1'
    )


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.0.0.2", "127.255.0.9", "::1", "[::1]", "localhost"]
)
def test_loopback_needs_no_keys(host: str) -> None:
    assert is_loopback(host)
    assert requires_keys(with_overrides(Config(), host=host), {}) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5", "10.0.0.1", "example.com"])
def test_other_hosts_need_keys(host: str) -> None:
    assert not is_loopback(host)
    assert requires_keys(with_overrides(Config(), host=host), {}) is not None
