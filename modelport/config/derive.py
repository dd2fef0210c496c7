"""What a checked config means here: its kinds' rows, keys, the ledger's place, the ports.

What depends on the environment (which key variables are set) is answered here and
never by a parse: the same file checks the same everywhere.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from urllib.parse import SplitResult, urlsplit

import platformdirs

from modelport.backends.profiles import DISCOVERY_PORTS, KINDS, Kind
from modelport.config.schema import (
    AGENTS_FILE,
    LEDGER_FILE,
    LEDGER_OFF,
    BackendConfig,
    Config,
)

__all__ = [
    "agent_key_problem",
    "agents_file_path",
    "api_keys",
    "backend_key",
    "discovery_ports",
    "is_cloud",
    "is_loopback",
    "kind_of",
    "ledger_path",
    "parse_rfc3339",
    "requires_keys",
    "split_keys",
    "split_url",
]


def kind_of(backend: BackendConfig) -> Kind:
    """The backend's row in the kind table (its kind is known once the config is checked)."""
    return KINDS[backend.kind]


def is_cloud(backend: BackendConfig) -> bool:
    """Cloud backends need a key; Anthropic only at its own host (engines speak it too)."""
    kind = KINDS.get(backend.kind)
    return kind is not None and kind.is_cloud(backend.url)


def backend_key(backend: BackendConfig, env: Mapping[str, str] = os.environ) -> str | None:
    """The `api_key` to pass to `connect`.

    With `api_key_env` set this is its value, "" when unset: "" stops the backend from
    falling back to its kind's usual variable, so a configured key is never swapped for
    another. Without `api_key_env`, None lets the backend read its usual variable.
    """
    if backend.api_key_env is None:
        return None
    return env.get(backend.api_key_env, "")


def api_keys(config: Config, env: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Accepted client keys -> key id (the variable's name; NAME#2 for a list's 2nd key).

    A variable may hold several keys separated by commas, so keys can be rotated without a
    restart of the clients that use the old one. Unset and empty variables add nothing.
    """
    keys: dict[str, str] = {}
    for name in config.server.api_keys_env:
        values = split_keys(env.get(name, ""))
        for number, value in enumerate(values, start=1):
            keys.setdefault(value, name if len(values) == 1 else f"{name}#{number}")
    return keys


def split_keys(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach `host`: localhost, 127.0.0.0/8 or ::1."""
    host = host.strip().removeprefix("[").removesuffix("]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def requires_keys(config: Config, env: Mapping[str, str] = os.environ) -> str | None:
    """Why `serve` must refuse to start, or None: off loopback, an unkeyed gateway is open."""
    host = config.server.host
    if is_loopback(host) or api_keys(config, env):
        return None
    names = config.server.api_keys_env
    if names:
        ask = f"set {' or '.join(names)} (server.api_keys_env)"
    else:
        ask = 'name a key variable in server.api_keys_env (e.g. ["MODELPORT_API_KEY"]) and set it'
    return f"refusing to serve on {host} without an API key: {ask}, or bind 127.0.0.1"


def ledger_path(config: Config) -> Path | None:
    """Where the usage ledger goes; None when it is off."""
    ledger = config.server.ledger
    if ledger == LEDGER_OFF:
        return None
    if not ledger:
        return Path(platformdirs.user_data_dir("modelport")) / LEDGER_FILE
    return Path(ledger).expanduser()


def agents_file_path(config: Config) -> Path:
    """Where `modelport hub add-agent` keeps the agents it admitted and revoked."""
    given = config.hub.agents_file
    if not given:
        return Path(platformdirs.user_data_dir("modelport")) / AGENTS_FILE
    return Path(given).expanduser()


AGENT_KEY_BYTES = 32  # an Ed25519 public key (usepod-agent's identity.rs)


def agent_key_problem(key: str) -> str | None:
    """What is wrong with an agent's public key (standard base64 of 32 raw bytes), or
    None. Said the same way by `config check`, `hub add-agent` and the hub's auth."""
    try:
        raw = base64.b64decode(key.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return "expected a public key in standard base64 (44 characters ending in '=')"
    if len(raw) != AGENT_KEY_BYTES:
        return f"expected a {AGENT_KEY_BYTES}-byte Ed25519 public key, got {len(raw)} bytes"
    return None


def parse_rfc3339(text: str) -> datetime:
    """An RFC 3339 time with its offset ("2026-12-01T00:00:00Z"); ValueError otherwise."""
    spec = text.strip()
    wrong = f"expected an RFC 3339 time like 2026-12-01T00:00:00Z, got {text!r}"
    if "T" not in spec.upper():
        raise ValueError(wrong)
    try:
        when = datetime.fromisoformat(spec)
    except ValueError:
        raise ValueError(wrong) from None
    if when.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset: add Z or +HH:MM (RFC 3339)")
    return when


def discovery_ports(config: Config) -> tuple[int, ...]:
    """The default ports, then the configured extras, each once."""
    return tuple(dict.fromkeys([*DISCOVERY_PORTS, *config.discovery.ports]))


def split_url(url: str) -> SplitResult | None:
    """urlsplit, or None when the URL cannot be read (a bad port raises only on access)."""
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError:
        return None
    return parts
