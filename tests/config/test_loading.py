"""modelport.toml: finding it, parsing it, and the paths and ports it implies."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelport.config import (
    CONFIG_ENV,
    BackendConfig,
    Config,
    ConfigError,
    DiscoveryConfig,
    ServerConfig,
    discovery_ports,
    find_config,
    ledger_path,
    load_config,
    parse_config,
)
from tests.config.helpers import EXAMPLE, write

# Parsing


def test_parses_the_full_example() -> None:
    config = parse_config(EXAMPLE)
    assert config == Config(
        server=ServerConfig(
            host="127.0.0.1",
            port=7878,
            api_keys_env=("MODELPORT_API_KEY",),
            max_body_mb=32,
            request_timeout_s=600,
            shutdown_grace_s=10,
            ledger="",
            log_level="info",
        ),
        discovery=DiscoveryConfig(enabled=True, refresh_s=30, host="127.0.0.1", ports=()),
        backends=(
            BackendConfig(
                name="local",
                kind="vllm",
                url="http://127.0.0.1:8000",
                api_key_env="VLLM_KEY",
                models=("qwen",),
                max_concurrent=8,
                max_queue=64,
                queue_timeout_s=30,
                priority=0,
            ),
        ),
        aliases={"chat": ("local/qwen", "openrouter/meta-llama/llama-3.1-8b-instruct")},
    )
    assert config.backends[0].label == "local"
    assert config.backends[0].spec == "vllm:http://127.0.0.1:8000"
    assert config.server.max_body_bytes == 32 * 1024 * 1024


def test_empty_text_is_all_defaults() -> None:
    config = parse_config("")
    assert config == Config()
    assert (config.server.host, config.server.port) == ("127.0.0.1", 7878)
    assert config.server.api_keys_env == ("MODELPORT_API_KEY",)
    assert config.server.max_body_mb == 32
    assert config.server.request_timeout_s == 600
    assert config.server.shutdown_grace_s == 10
    assert config.server.log_level == "info"
    assert config.discovery == DiscoveryConfig(enabled=True, refresh_s=30, host="127.0.0.1")
    assert config.backends == ()
    assert config.aliases == {}


def test_backend_defaults_and_label_from_kind() -> None:
    config = parse_config('[[backends]]\nkind = "ollama"\n')
    backend = config.backends[0]
    assert backend == BackendConfig(kind="ollama")
    assert (backend.label, backend.spec, backend.url, backend.name) == (
        "ollama",
        "ollama",
        None,
        None,
    )
    assert (backend.max_concurrent, backend.max_queue) == (8, 64)
    assert (backend.queue_timeout_s, backend.priority, backend.models) == (30, 0, ())


def test_no_file_anywhere_means_defaults(dirs: Path) -> None:
    assert load_config(None, env={}) == (Config(), None)


def test_load_config_reads_the_file_and_names_it_in_errors(dirs: Path) -> None:
    good = write(dirs / "good.toml", EXAMPLE)
    assert load_config(good, env={}) == (parse_config(EXAMPLE), good)
    bad = write(dirs / "bad.toml", "[server]\nport = 0\n")
    with pytest.raises(ConfigError) as info:
        load_config(bad, env={})
    assert str(info.value) == f"{bad}: server.port: expected a port in 1..65535, got 0"


# Finding the file


def test_find_config_precedence(dirs: Path) -> None:
    default = write(dirs / "xdg-config" / "modelport" / "modelport.toml", "")
    from_env = write(dirs / "env.toml", "")
    explicit = write(dirs / "explicit.toml", "")
    env = {CONFIG_ENV: str(from_env)}
    assert find_config(explicit, env) == explicit
    assert find_config(str(explicit), env) == explicit
    assert find_config(None, env) == from_env
    assert find_config(None, {}) == default
    assert find_config(None, {CONFIG_ENV: ""}) == default


def test_find_config_default_missing_is_none(dirs: Path) -> None:
    assert find_config(None, {}) is None


def test_find_config_named_file_must_exist(dirs: Path) -> None:
    missing = dirs / "nope.toml"
    with pytest.raises(ConfigError) as info:
        find_config(missing, {})
    assert str(info.value) == f"--config: config file {str(missing)!r} does not exist"
    with pytest.raises(ConfigError) as info:
        find_config(None, {CONFIG_ENV: str(missing)})
    assert str(info.value) == f"MODELPORT_CONFIG: config file {str(missing)!r} does not exist"
    with pytest.raises(ConfigError) as info:
        find_config(dirs, {})
    assert str(info.value) == f"--config: config file {str(dirs)!r} is not a file"


def test_explicit_path_wins_even_when_env_points_nowhere(dirs: Path) -> None:
    explicit = write(dirs / "explicit.toml", "")
    assert find_config(explicit, {CONFIG_ENV: str(dirs / "nope.toml")}) == explicit


# Ledger and discovery


def test_ledger_path(dirs: Path) -> None:
    assert ledger_path(Config()) == dirs / "xdg-data" / "modelport" / "usage.sqlite3"
    assert ledger_path(parse_config('[server]\nledger = "off"\n')) is None
    assert ledger_path(parse_config('[server]\nledger = "/var/mp.db"\n')) == Path("/var/mp.db")


def test_relative_ledger_is_next_to_the_config_file(dirs: Path) -> None:
    path = write(dirs / "conf" / "modelport.toml", '[server]\nledger = "data/usage.db"\n')
    config, _ = load_config(path, env={})
    assert ledger_path(config) == dirs / "conf" / "data" / "usage.db"


def test_discovery_ports_add_extras_once() -> None:
    config = parse_config("[discovery]\nports = [9999, 8080, 9999]\n")
    assert discovery_ports(config) == (11434, 8080, 9931, 8000, 1234, 9999)


def test_copied_constants_match_their_sources() -> None:
    from modelport import config as module
    from modelport.backends import anthropic
    from modelport.discovery import DEFAULT_PORTS

    assert module.ANTHROPIC_URL == anthropic.DEFAULT_URL
    assert module.ANTHROPIC_KEY_ENV == anthropic.API_KEY_ENV
    assert module.DISCOVERY_PORTS == DEFAULT_PORTS
