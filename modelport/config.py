"""The `modelport.toml` file: where it is, what it may say, and what `serve` makes of it.

Parsing is strict: an unknown key, a wrong type or an impossible value is an error that
names its key, because a gateway that quietly ignores `max_concurent = 2` runs without the
limit its operator asked for. What depends on the environment (whether a key variable is
set) is never a parse error: the same file checks the same everywhere, and `render_check`
and `requires_keys` report the environment's part.

This module stays light (no aiohttp): `modelport config check` should answer at once.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

import msgspec
import platformdirs

from modelport.backends import kinds
from modelport.backends.profiles import PROFILES

__all__ = [
    "CONFIG_ENV",
    "BackendConfig",
    "Config",
    "ConfigError",
    "DiscoveryConfig",
    "ServerConfig",
    "api_keys",
    "backend_key",
    "default_config_path",
    "discovery_ports",
    "find_config",
    "is_cloud",
    "is_loopback",
    "ledger_path",
    "load_config",
    "parse_config",
    "render_check",
    "requires_keys",
    "with_overrides",
]

CONFIG_ENV = "MODELPORT_CONFIG"
FILE_NAME = "modelport.toml"
LEDGER_FILE = "usage.sqlite3"
LEDGER_OFF = "off"
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")

# Copies of constants from modules that import aiohttp; tests/test_config.py checks that
# they still match modelport.backends.anthropic and modelport.discovery.
ANTHROPIC_URL = "https://api.anthropic.com"
ANTHROPIC_KEY_ENV = "ANTHROPIC_API_KEY"
DISCOVERY_PORTS = (11434, 8080, 9931, 8000, 1234)

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


class ConfigError(Exception):
    """A config that cannot be used. The message names the file and the key at fault."""

    def __init__(self, problem: str, *, key: str = "", source: str = "") -> None:
        self.problem = problem
        self.key = key
        self.source = source
        super().__init__(": ".join(part for part in (source, key, problem) if part))


class ServerConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The gateway's HTTP side: where it listens, who may call it, how much it accepts."""

    host: str = "127.0.0.1"
    port: int = 7878
    # Environment variables holding accepted keys; none set means no auth (loopback only).
    api_keys_env: tuple[str, ...] = ("MODELPORT_API_KEY",)
    max_body_mb: float = 32
    request_timeout_s: float = 600
    # How long SIGTERM lets streams in flight finish; 0 cuts them at once.
    shutdown_grace_s: float = 10
    # "" = the user data dir, "off" = no ledger, else a path (relative to the config file).
    ledger: str = ""
    log_level: str = "info"
    # With no backend configured and none discovered, run the bundled model.
    embedded: bool = True
    # How many managed llama-servers may run at once (each holds a model in memory).
    max_managed: int = 1

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)


class DiscoveryConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Engines found on this machine, served alongside the configured ones."""

    enabled: bool = True
    refresh_s: float = 30
    host: str = "127.0.0.1"
    ports: tuple[int, ...] = ()  # probed besides the default ports


class BackendConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One engine to serve; clients reach its models as "label/model" or by model name."""

    kind: str
    name: str | None = None
    url: str | None = None  # None: the kind's default URL
    api_key_env: str | None = None
    models: tuple[str, ...] = ()  # allow-list; empty serves every model the engine lists
    max_concurrent: int = 8
    max_queue: int = 64
    queue_timeout_s: float = 30
    priority: int = 0
    # kind = "managed" only: a llama-server modelport runs itself.
    model: str | None = None  # GGUF path; None: the bundled Gemma 3 270M
    alias: str | None = None  # the model name clients use; default: bundled name or file stem
    llama_server: str | None = None  # binary; None: the installed one (`modelport engine install`)
    ctx_size: int = 4096
    threads: int | None = None
    parallel: int = 2
    chat_template: str | None = None
    idle_unload_s: float = 0  # stop the engine after this long without requests; 0: never
    args: tuple[str, ...] = ()  # more llama-server flags, passed as they are

    @property
    def label(self) -> str:
        """The name clients and logs use: `name`, or the kind when there is none."""
        return self.name if self.name is not None else self.kind

    @property
    def spec(self) -> str:
        """What `modelport.backends.connect` takes: "KIND" or "KIND:URL"."""
        return f"{self.kind}:{self.url}" if self.url else self.kind


class Config(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The whole file. Every part has a default: no file means discovery alone."""

    server: ServerConfig = msgspec.field(default_factory=ServerConfig)
    discovery: DiscoveryConfig = msgspec.field(default_factory=DiscoveryConfig)
    backends: tuple[BackendConfig, ...] = ()
    aliases: dict[str, tuple[str, ...]] = msgspec.field(default_factory=dict)


# Finding and loading


def default_config_path() -> Path:
    """Where the file lives when nothing names it (platformdirs reads the process env)."""
    return Path(platformdirs.user_config_dir("modelport")) / FILE_NAME


def find_config(explicit: str | Path | None, env: Mapping[str, str] = os.environ) -> Path | None:
    """The file to use: `--config`, else $MODELPORT_CONFIG, else the user config dir.

    A path someone named must exist (a typo there should not silently mean "defaults");
    the default location may be empty.
    """
    if explicit is not None and str(explicit) != "":
        return _existing(Path(explicit), "--config")
    named = env.get(CONFIG_ENV, "")
    if named:
        return _existing(Path(named), CONFIG_ENV)
    path = default_config_path()
    return path if path.is_file() else None


def _existing(path: Path, where: str) -> Path:
    path = path.expanduser()
    if not path.exists():
        raise ConfigError(f"config file {str(path)!r} does not exist", key=where)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} is not a file", key=where)
    return path


def load_config(
    path: str | Path | None = None, *, env: Mapping[str, str] = os.environ
) -> tuple[Config, Path | None]:
    """The config to serve and the file it came from (None: no file, defaults)."""
    found = find_config(path, env)
    if found is None:
        return Config(), None
    try:
        text = found.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", source=str(found)) from None
    config = parse_config(text, source=str(found), env=env)
    return _anchor_ledger(config, found.parent), found


def _anchor_ledger(config: Config, base: Path) -> Config:
    """A relative ledger path means next to the config file, not wherever serve started."""
    ledger = config.server.ledger
    if ledger in ("", LEDGER_OFF) or Path(ledger).expanduser().is_absolute():
        return config
    server = msgspec.structs.replace(config.server, ledger=str(base / ledger))
    return msgspec.structs.replace(config, server=server)


def parse_config(
    text: str, *, source: str = FILE_NAME, env: Mapping[str, str] = os.environ
) -> Config:
    """Parse and check a config file's text; `source` prefixes every error message.

    `env` is accepted for symmetry with the other functions but not consulted: validity
    never depends on which variables happen to be set.
    """
    try:
        data = tomllib.loads(text)
        _check_alias_shapes(data.get("aliases"))
        config = _convert(data)
        _validate(config)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}", source=source) from None
    except ConfigError as exc:
        raise ConfigError(exc.problem, key=exc.key, source=source) from None
    return config


def with_overrides(config: Config, *, host: str | None = None, port: int | None = None) -> Config:
    """The config with `serve --host/--port` applied, checked like the file's own values."""
    server = config.server
    if host is not None:
        _check_host("--host", host)
        server = msgspec.structs.replace(server, host=host)
    if port is not None:
        _check_port("--port", port)
        server = msgspec.structs.replace(server, port=port)
    return msgspec.structs.replace(config, server=server)


# Typed conversion and its messages

_UNKNOWN = re.compile(r"Object contains unknown field `(?P<name>.*)`")
_MISSING = re.compile(r"Object missing required field `(?P<name>.*)`")
_EXPECTED = re.compile(r"Expected `(?P<want>[^`]*)`, got `(?P<got>[^`]*)`")
_AT = re.compile(r"(?P<what>.*) - at `\$(?P<path>.*)`")

# msgspec's word -> the word a TOML author knows.
_TYPE_WORDS = {"object": "table", "null": "nothing"}


def _convert(data: dict[str, Any]) -> Config:
    try:
        return msgspec.convert(data, Config)
    except msgspec.ValidationError as exc:
        raise _from_msgspec(str(exc)) from None


def _from_msgspec(message: str) -> ConfigError:
    """msgspec's "Expected `int`, got `str` - at `$.a[1].b`" -> key a[1].b, problem."""
    what, path = message, ""
    if at := _AT.fullmatch(message):
        what, path = at["what"], at["path"].removeprefix(".")
    if unknown := _UNKNOWN.fullmatch(what):
        name = unknown["name"]
        return ConfigError(f"unknown key{_suggestion(name, path)}", key=_join(path, name))
    if missing := _MISSING.fullmatch(what):
        return ConfigError("required key missing", key=_join(path, missing["name"]))
    if expected := _EXPECTED.fullmatch(what):
        want = _TYPE_WORDS.get(expected["want"], expected["want"])
        got = _TYPE_WORDS.get(expected["got"], expected["got"])
        return ConfigError(f"expected {want}, got {got}", key=path)
    return ConfigError(what[:1].lower() + what[1:], key=path)


def _join(path: str, name: str) -> str:
    part = _key_part(name)
    return f"{path}.{part}" if path else part


def _key_part(name: str) -> str:
    """A table key as TOML would write it: bare when it can be, quoted otherwise."""
    return name if _BARE_KEY.fullmatch(name) else msgspec.json.encode(name).decode()


_TABLES: dict[str, type[msgspec.Struct]] = {
    "": Config,
    "server": ServerConfig,
    "discovery": DiscoveryConfig,
    "backends": BackendConfig,
}


def _suggestion(name: str, path: str) -> str:
    """ " (did you mean 'x'?)" for a near miss of a key the table at `path` has."""
    table = _TABLES.get(re.sub(r"\[\d+\]", "", path))
    if table is None:
        return ""
    close = difflib.get_close_matches(name, table.__struct_fields__, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _toml_type(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "table"
    return type(value).__name__


def _check_alias_shapes(aliases: object) -> None:
    """Check alias values before msgspec, whose errors cannot name a table's key."""
    if not isinstance(aliases, dict):
        return  # msgspec reports "aliases: expected table, got ..."
    for name, targets in aliases.items():
        key = _join("aliases", name)
        if not isinstance(targets, list):
            raise ConfigError(f"expected array of strings, got {_toml_type(targets)}", key=key)
        for index, target in enumerate(targets):
            if not isinstance(target, str):
                raise ConfigError(f"expected str, got {_toml_type(target)}", key=f"{key}[{index}]")


# Checks msgspec's types cannot express


def _validate(config: Config) -> None:
    _check_server(config.server)
    _check_discovery(config.discovery)
    for index, backend in enumerate(config.backends):
        _check_backend(f"backends[{index}]", backend)
    _check_labels(config.backends)
    _check_aliases(config.aliases, {backend.label for backend in config.backends})


def _check_server(server: ServerConfig) -> None:
    _check_host("server.host", server.host)
    _check_port("server.port", server.port)
    for index, name in enumerate(server.api_keys_env):
        _check_env_name(f"server.api_keys_env[{index}]", name)
    _check_positive("server.max_body_mb", server.max_body_mb)
    _check_positive("server.request_timeout_s", server.request_timeout_s)
    _check_finite("server.shutdown_grace_s", server.shutdown_grace_s, low=0)
    _check_at_least("server.max_managed", server.max_managed, 1)
    if server.log_level not in LOG_LEVELS:
        raise ConfigError(
            f"expected one of {', '.join(LOG_LEVELS)}; got {server.log_level!r}",
            key="server.log_level",
        )
    if server.ledger and not server.ledger.strip():
        raise ConfigError('expected a path, "off" or ""; got blanks', key="server.ledger")


def _check_discovery(discovery: DiscoveryConfig) -> None:
    _check_positive("discovery.refresh_s", discovery.refresh_s)
    _check_host("discovery.host", discovery.host)
    for index, port in enumerate(discovery.ports):
        _check_port(f"discovery.ports[{index}]", port)


def _check_backend(key: str, backend: BackendConfig) -> None:
    if backend.kind not in kinds():
        raise ConfigError(
            f"unknown kind {backend.kind!r}; known: {', '.join(kinds())}", key=f"{key}.kind"
        )
    if backend.name is not None:
        _check_label(f"{key}.name", backend.name)
    if backend.url is not None:
        _check_url(f"{key}.url", backend.url)
    if backend.api_key_env is not None:
        _check_env_name(f"{key}.api_key_env", backend.api_key_env)
    elif is_cloud(backend):
        raise ConfigError(
            f"required for the cloud kind {backend.kind!r} "
            f'(e.g. api_key_env = "{_usual_key_env(backend.kind)}")',
            key=f"{key}.api_key_env",
        )
    for index, model in enumerate(backend.models):
        if not model.strip():
            raise ConfigError(
                "expected a model name, got an empty string", key=f"{key}.models[{index}]"
            )
    _check_at_least(f"{key}.max_concurrent", backend.max_concurrent, 1)
    _check_at_least(f"{key}.max_queue", backend.max_queue, 0)
    _check_positive(f"{key}.queue_timeout_s", backend.queue_timeout_s)
    _check_managed(key, backend)


_MANAGED_ONLY = ("model", "alias", "llama_server", "threads", "chat_template")


def _check_managed(key: str, backend: BackendConfig) -> None:
    """Engine knobs belong to kind = "managed"; elsewhere they would be silently ignored."""
    if backend.kind != "managed":
        for name in _MANAGED_ONLY:
            if getattr(backend, name) is not None:
                raise ConfigError('only for kind = "managed"', key=f"{key}.{name}")
        if backend.args or backend.idle_unload_s:
            which = "args" if backend.args else "idle_unload_s"
            raise ConfigError('only for kind = "managed"', key=f"{key}.{which}")
        return
    if backend.url is not None:
        raise ConfigError("a managed engine picks its own port; remove url", key=f"{key}.url")
    _check_at_least(f"{key}.ctx_size", backend.ctx_size, 256)
    _check_at_least(f"{key}.parallel", backend.parallel, 1)
    if backend.threads is not None:
        _check_at_least(f"{key}.threads", backend.threads, 1)
    if backend.idle_unload_s < 0:
        raise ConfigError("must be 0 (never) or more", key=f"{key}.idle_unload_s")


def _check_label(key: str, label: str) -> None:
    """Labels are the "label/" prefix of model names, so a slash or a blank would split wrong."""
    if not label:
        raise ConfigError("must not be empty", key=key)
    if "/" in label:
        raise ConfigError(f"{label!r} may not contain '/' (it separates label and model)", key=key)
    if any(char.isspace() for char in label):
        raise ConfigError(f"{label!r} may not contain spaces", key=key)


def _check_labels(backends: Iterable[BackendConfig]) -> None:
    seen: dict[str, int] = {}
    for index, backend in enumerate(backends):
        label = backend.label
        if label in seen:
            field = "name" if backend.name is not None else "kind"
            raise ConfigError(
                f"duplicate backend label {label!r} (also backends[{seen[label]}]); "
                "give each backend its own name",
                key=f"backends[{index}].{field}",
            )
        seen[label] = index


def _check_aliases(aliases: Mapping[str, tuple[str, ...]], labels: set[str]) -> None:
    """An alias maps a model name to candidates tried in order; it never chains.

    It may not start with a backend's "label/": that would hide the explicit route.
    """
    for name, targets in aliases.items():
        key = _join("aliases", name)
        if not name.strip():
            raise ConfigError("an alias name must not be empty", key=key)
        prefix = name.partition("/")[0]
        if "/" in name and prefix in labels:
            raise ConfigError(
                f"shadows the explicit route to backend {prefix!r}; pick another name", key=key
            )
        if not targets:
            raise ConfigError("expected at least one model", key=key)
        for index, target in enumerate(targets):
            if not target.strip():
                raise ConfigError(
                    "expected a model name, got an empty string", key=f"{key}[{index}]"
                )
            if target in aliases:
                raise ConfigError(
                    f"{target!r} is itself an alias; aliases do not chain", key=f"{key}[{index}]"
                )


def _check_host(key: str, host: str) -> None:
    if not host or any(char.isspace() for char in host):
        raise ConfigError(f"expected a host name or address, got {host!r}", key=key)


def _check_port(key: str, port: int) -> None:
    if not 1 <= port <= 65535:
        raise ConfigError(f"expected a port in 1..65535, got {port}", key=key)


def _check_env_name(key: str, name: str) -> None:
    # The value is not echoed: a key pasted here by mistake must not reach a log.
    if not _ENV_NAME.fullmatch(name):
        raise ConfigError(
            "expected the name of an environment variable (letters, digits, _), not a key itself",
            key=key,
        )


def _check_url(key: str, url: str) -> None:
    parts = _split(url)
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"expected an http(s) URL with a host, got {_redact(url)!r}", key=key)


def _split(url: str) -> SplitResult | None:
    """urlsplit, or None when the URL cannot be read (a bad port raises only on access)."""
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError:
        return None
    return parts


def _check_positive(key: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"expected a number > 0, got {value}", key=key)


def _check_finite(key: str, value: float, *, low: float) -> None:
    if not (math.isfinite(value) and value >= low):
        raise ConfigError(f"expected a number >= {low:g}, got {value}", key=key)


def _check_at_least(key: str, value: int, low: int) -> None:
    if value < low:
        raise ConfigError(f"expected an integer >= {low}, got {value}", key=key)


# What the gateway needs from a checked config


def is_cloud(backend: BackendConfig) -> bool:
    """Cloud backends need a key; Anthropic only at its own host (engines speak it too)."""
    if backend.kind == "anthropic":
        parts = _split(backend.url or ANTHROPIC_URL)
        return parts is not None and parts.hostname == urlsplit(ANTHROPIC_URL).hostname
    profile = PROFILES.get(backend.kind)
    return profile is not None and profile.cloud


def _usual_key_env(kind: str) -> str | None:
    """The variable a backend of this kind reads when `connect` gets no key."""
    if kind == "anthropic":
        return ANTHROPIC_KEY_ENV
    profile = PROFILES.get(kind)
    return profile.api_key_env if profile else None


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
        values = _split_keys(env.get(name, ""))
        for number, value in enumerate(values, start=1):
            keys.setdefault(value, name if len(values) == 1 else f"{name}#{number}")
    return keys


def _split_keys(value: str) -> list[str]:
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


def discovery_ports(config: Config) -> tuple[int, ...]:
    """The default ports, then the configured extras, each once."""
    return tuple(dict.fromkeys([*DISCOVERY_PORTS, *config.discovery.ports]))


# `modelport config check`


def render_check(config: Config, path: Path | None, env: Mapping[str, str] = os.environ) -> str:
    """Plain text of what `serve` would do with this config. Never prints a key's value."""
    lines = [
        f"config: {path}" if path is not None else "no config file: defaults",
        f"listen: http://{_host_port(config.server.host, config.server.port)}",
        *_auth_lines(config, env),
        *_server_lines(config),
        *_discovery_lines(config),
        *_backend_lines(config.backends, env),
        *_alias_lines(config.aliases),
        _embedded_line(config),
    ]
    return "\n".join(lines) + "\n"


def _embedded_line(config: Config) -> str:
    if not config.server.embedded:
        return "embedded engine: off"
    if config.backends:
        return "embedded engine: not used (backends are configured)"
    return "embedded engine: served as gemma-3-270m when discovery finds no engine"


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _auth_lines(config: Config, env: Mapping[str, str]) -> list[str]:
    names = config.server.api_keys_env
    if not names:
        lines = ["auth: off (server.api_keys_env is empty)"]
    else:
        state = "on" if api_keys(config, env) else "off (no key variable is set)"
        lines = [f"auth: {state}"]
        lines += [f"  {name}: {_key_state(env.get(name, ''))}" for name in names]
    refusal = requires_keys(config, env)
    if refusal:
        lines.append(f"  serve would not start: {refusal}")
    return lines


def _key_state(value: str) -> str:
    count = len(_split_keys(value))
    if count == 0:
        return "not set"
    return "set" if count == 1 else f"set ({count} keys)"


def _server_lines(config: Config) -> list[str]:
    server = config.server
    ledger = ledger_path(config)
    return [
        f"body cap: {server.max_body_mb:g} MB",
        f"request timeout: {server.request_timeout_s:g} s",
        f"shutdown grace: {server.shutdown_grace_s:g} s",
        f"ledger: {ledger if ledger is not None else 'off'}",
        f"log level: {server.log_level}",
    ]


def _discovery_lines(config: Config) -> list[str]:
    discovery = config.discovery
    if not discovery.enabled:
        return ["discovery: off"]
    ports = ", ".join(str(port) for port in discovery_ports(config))
    return [f"discovery: on, host {discovery.host}, ports {ports}, every {discovery.refresh_s:g} s"]


def _backend_lines(backends: tuple[BackendConfig, ...], env: Mapping[str, str]) -> list[str]:
    if not backends:
        return ["backends: none configured"]
    lines = [f"backends: {len(backends)}"]
    for backend in backends:
        lines += [
            f"  {backend.label} ({backend.kind}{', cloud' if is_cloud(backend) else ''})",
            f"    url: {_shown_url(backend, env)}",
            f"    key: {_backend_key_state(backend, env)}",
            f"    models: {', '.join(backend.models) if backend.models else 'all it lists'}",
            f"    limits: max_concurrent {backend.max_concurrent}, max_queue {backend.max_queue}, "
            f"queue_timeout_s {backend.queue_timeout_s:g}",
            f"    priority: {backend.priority}",
        ]
        if backend.kind == "managed":
            lines += _managed_lines(backend)
    return lines


def _managed_lines(backend: BackendConfig) -> list[str]:
    model = backend.model or "the bundled Gemma 3 270M"
    alias = backend.alias or ("gemma-3-270m" if backend.model is None else "the file's stem")
    idle = f"after {backend.idle_unload_s:g} s idle" if backend.idle_unload_s else "never"
    return [
        f"    engine: {backend.llama_server or 'the installed llama-server'}",
        f"    model file: {model}, served as {alias}",
        f"    ctx_size {backend.ctx_size} over {backend.parallel} slots "
        f"({backend.ctx_size // backend.parallel} per request); unload: {idle}",
    ]


def _shown_url(backend: BackendConfig, env: Mapping[str, str]) -> str:
    if backend.url is not None:
        return _redact(backend.url)
    if backend.kind == "mock":
        return "none (scripted in-process backend)"
    if backend.kind == "managed":
        return "a free loopback port, chosen when it starts"
    if backend.kind == "ollama" and env.get("OLLAMA_HOST"):
        return f"default, from OLLAMA_HOST ({_redact(env['OLLAMA_HOST'])})"
    if backend.kind == "anthropic":
        return f"default ({ANTHROPIC_URL})"
    return f"default ({PROFILES[backend.kind].default_url})"


def _backend_key_state(backend: BackendConfig, env: Mapping[str, str]) -> str:
    if backend.api_key_env is not None:
        state = "set" if env.get(backend.api_key_env) else "not set"
        if state == "not set" and is_cloud(backend):
            state += ": its requests will fail with AuthError"
        return f"{backend.api_key_env} ({state})"
    fallback = _usual_key_env(backend.kind)
    if fallback and env.get(fallback):
        return f"none configured; the backend reads {fallback} (set)"
    return "none"


def _redact(url: str) -> str:
    """The URL with any password in it replaced: URLs are shown, secrets are not."""
    parts = _split(url)
    if parts is None or parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{parts.username}:***@{host}").geturl()


def _alias_lines(aliases: Mapping[str, tuple[str, ...]]) -> list[str]:
    if not aliases:
        return ["aliases: none"]
    return ["aliases:", *(f"  {name} -> {', '.join(to)}" for name, to in aliases.items())]
