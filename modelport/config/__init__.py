"""The `modelport.toml` file: where it is, what it may say, and what `serve` makes of it.

- `schema`: the msgspec structs, one per table, with their defaults.
- `load`: finding the file, TOML -> checked Config, `serve --host/--port` overrides.
- `shape`: the raw TOML against the schema's types and keys (messages built from the walk).
- `check`: the rules types cannot express, and which fields each kind takes.
- `derive`: what a checked config means here (keys, cloud, ledger path, ports).
- `render`: what `modelport config check` prints.

Every backend kind is a row of modelport.backends.profiles.KINDS; nothing here branches
on a kind's name. This package stays light (no aiohttp): `config check` answers at once.
"""

from __future__ import annotations

from modelport.backends.profiles import DISCOVERY_PORTS, KINDS
from modelport.config.check import check_config, hub_warnings
from modelport.config.derive import (
    agent_key_problem,
    agents_file_path,
    api_keys,
    backend_key,
    discovery_ports,
    is_cloud,
    is_loopback,
    kind_of,
    ledger_path,
    parse_rfc3339,
    requires_keys,
)
from modelport.config.errors import ConfigError
from modelport.config.load import (
    CONFIG_ENV,
    default_config_path,
    find_config,
    load_config,
    parse_config,
    with_overrides,
)
from modelport.config.render import render_check
from modelport.config.schema import (
    BackendConfig,
    CapabilitiesConfig,
    Config,
    DiscoveryConfig,
    EnrollmentCode,
    HubConfig,
    ServerConfig,
)

__all__ = [
    "ANTHROPIC_KEY_ENV",
    "ANTHROPIC_URL",
    "CONFIG_ENV",
    "DISCOVERY_PORTS",
    "BackendConfig",
    "CapabilitiesConfig",
    "Config",
    "ConfigError",
    "DiscoveryConfig",
    "EnrollmentCode",
    "HubConfig",
    "ServerConfig",
    "agent_key_problem",
    "agents_file_path",
    "api_keys",
    "backend_key",
    "check_config",
    "default_config_path",
    "discovery_ports",
    "find_config",
    "hub_warnings",
    "is_cloud",
    "is_loopback",
    "kind_of",
    "ledger_path",
    "load_config",
    "parse_config",
    "parse_rfc3339",
    "render_check",
    "requires_keys",
    "with_overrides",
]

# Read from the kind table (not copies): tests/config/test_loading.py checks they match the
# Anthropic adapter's own constants, which it keeps for its users.
ANTHROPIC_URL = KINDS["anthropic"].default_url
ANTHROPIC_KEY_ENV = KINDS["anthropic"].api_key_env
