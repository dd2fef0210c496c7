"""agent.toml: usepod-agent's config file, read as it reads it, plus modelport's own table.

The types below are the file's shape (usepod-agent 0.3.x `src/config.rs`); `[modelport]`
holds what only modelport reads, so a file written for usepod-agent works unchanged and a
file with a `[modelport]` table still works with usepod-agent (it ignores unknown tables).
"""

from __future__ import annotations

import difflib
import logging
import os
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import platformdirs

from modelport.config.errors import join_key
from modelport.config.shape import toml_type
from modelport.wire.provider import DEFAULT_COORDINATOR_URL

T = TypeVar("T")

DEFAULT_KEY_PATH = "~/.usepod-agent/identity.key"
DEFAULT_PROMETHEUS_ADDR = "127.0.0.1:9090"
# Engine kinds usepod-agent knows; local ones need `url`, BYOK ones `api_key_env`.
LOCAL_KINDS = ("vllm", "llamacpp", "lmstudio", "ollama")
BYOK_KINDS = ("openrouter", "venice")


@dataclass(frozen=True)
class Operator:
    display_name: str = ""
    wallet: str = ""
    contact_email: str | None = None


@dataclass(frozen=True)
class BackendEntry:
    """One `[[backends]]` row."""

    kind: str
    url: str | None = None
    api_key_env: str | None = None  # the environment variable holding the key, never the key
    markup: float | None = None
    models: tuple[str, ...] | None = None  # an allow-list; None: every model it lists


@dataclass(frozen=True)
class ModelPrice:
    input_per_1m: int
    output_per_1m: int


@dataclass(frozen=True)
class Pricing:
    """USDC micro-units per million tokens."""

    default_input_per_1m: int
    default_output_per_1m: int
    models: dict[str, ModelPrice] = field(default_factory=dict)

    def price(self, model_id: str) -> ModelPrice:
        return self.models.get(
            model_id, ModelPrice(self.default_input_per_1m, self.default_output_per_1m)
        )


@dataclass(frozen=True)
class Limits:
    max_concurrent: int = 8  # 1..256
    max_tokens_per_minute: int | None = None


@dataclass(frozen=True)
class Observability:
    prometheus_addr: str = DEFAULT_PROMETHEUS_ADDR
    log_level: str = "info"


@dataclass(frozen=True)
class ModelportSettings:
    """`[modelport]`: what only modelport's agent reads."""

    rediscover_s: float = 300.0  # how often engines are looked for again
    discover: bool = True  # also serve engines found on this machine's usual ports
    ledger_path: Path | None = None  # None: the user data dir's agent-ledger.sqlite
    first_byte_timeout_s: float = 120.0


@dataclass(frozen=True)
class AgentConfig:
    coordinator_url: str = DEFAULT_COORDINATOR_URL
    enrollment_code: str | None = None
    key_path: str = DEFAULT_KEY_PATH
    backends: tuple[BackendEntry, ...] = ()
    pricing: Pricing = field(default_factory=lambda: Pricing(1, 1))
    limits: Limits = field(default_factory=Limits)
    observability: Observability = field(default_factory=Observability)
    operator: Operator = field(default_factory=Operator)
    modelport: ModelportSettings = field(default_factory=ModelportSettings)
    source: Path | None = None  # the file it was read from


# ---------------------------------------------------------------------------
# The loader: usepod-agent's `config::load` and `validate` (src/config.rs), read key by key
# so each mistake gets one message naming the file, the key and the rule.

log = logging.getLogger("modelport.agent")

# Kinds modelport serves that usepod-agent does not know. A file using them is modelport's
# only (usepod-agent refuses an unknown kind); files written for usepod-agent never have them.
MODELPORT_LOCAL_KINDS = ("localai", "openai-compatible")
MODELPORT_BYOK_KINDS = ("openai", "anthropic")
# `managed` is not here: its engine knobs (model, ctx_size, ...) are not [[backends]] fields.
KINDS_NEEDING_URL = LOCAL_KINDS + MODELPORT_LOCAL_KINDS
KINDS_NEEDING_KEY = BYOK_KINDS + MODELPORT_BYOK_KINDS

BACKEND_FIELDS = ("kind", "url", "api_key_env", "markup", "models")
MODELPORT_FIELDS = ("rediscover_s", "discover", "ledger_path", "first_byte_timeout_s")
# The tables and keys usepod-agent's serde structs read. Anything else is ignored, as serde
# ignores it (only Backend has deny_unknown_fields); modelport logs a warning naming it.
KNOWN_KEYS: dict[str, tuple[str, ...]] = {
    "": (
        "operator",
        "coordinator",
        "identity",
        "backends",
        "pricing",
        "limits",
        "observability",
        "modelport",
    ),
    "operator": ("display_name", "wallet", "contact_email"),
    "coordinator": ("url", "enrollment_code"),
    "identity": ("key_path",),
    "pricing": ("default_input_per_1m", "default_output_per_1m", "models"),
    "limits": ("max_concurrent", "max_tokens_per_minute"),
    "observability": ("prometheus_addr", "log_level"),
}
MAX_CONCURRENT_RANGE = (1, 256)
CONFIG_DIR_NAME = "usepod-agent"
CONFIG_FILE_NAME = "agent.toml"


class AgentConfigError(Exception):
    """An agent.toml that cannot be used. The message names the file, the key and the rule."""

    def __init__(self, problem: str, *, key: str = "", source: str = "") -> None:
        self.problem = problem
        self.key = key
        self.source = source
        super().__init__(": ".join(part for part in (source, key, problem) if part))


def user_config_path() -> Path:
    """usepod-agent's own place for agent.toml: `directories::ProjectDirs::from("ai",
    "usepod", "usepod-agent").config_dir()` (config.rs), what `setup` writes by default."""
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support" / "ai.usepod.usepod-agent"
    elif sys.platform == "win32":
        base = Path(platformdirs.user_config_dir(CONFIG_DIR_NAME, "usepod", roaming=True))
        base = base / "config"
    else:
        xdg = os.environ.get("XDG_CONFIG_HOME", "")
        root = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".config"
        base = root / CONFIG_DIR_NAME
    return base / CONFIG_FILE_NAME


def default_agent_config_path() -> Path:
    """usepod-agent's lookup order (config.rs `default_config_path`): the user config dir's
    `usepod-agent/agent.toml`, then ./agent.toml; neither there is an error naming both."""
    for candidate in (user_config_path(), Path.cwd() / CONFIG_FILE_NAME):
        if candidate.is_file():
            return candidate
    raise AgentConfigError(
        f"no agent.toml found; pass --config or place one at {user_config_path()} "
        f"or ./{CONFIG_FILE_NAME}"
    )


def load_agent_config(path: Path | None = None, *, allow_insecure: bool = False) -> AgentConfig:
    """Read, parse and check agent.toml (`path`, else the lookup order above)."""
    found = default_agent_config_path() if path is None else Path(path)
    try:
        text = found.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise AgentConfigError(f"cannot read: {reason}", source=str(found)) from None
    config = parse_agent_config(text, source=str(found), allow_insecure=allow_insecure)
    return replace(config, source=found)


def parse_agent_config(
    text: str, *, source: str = CONFIG_FILE_NAME, allow_insecure: bool = False
) -> AgentConfig:
    """agent.toml's text -> a checked AgentConfig; `source` prefixes every error message."""
    try:
        data = tomllib.loads(text)
        _warn_ignored(data, source)
        config = _read(data, source)
        _validate(config, allow_insecure)
    except tomllib.TOMLDecodeError as exc:
        raise AgentConfigError(f"invalid TOML: {exc}", source=source) from None
    except AgentConfigError as exc:
        raise AgentConfigError(exc.problem, key=exc.key, source=source) from None
    return config


def _read(data: dict[str, Any], source: str) -> AgentConfig:
    coordinator = _table(data, "coordinator", required=True)
    identity = _table(data, "identity")
    operator = _table(data, "operator")
    limits = _table(data, "limits")
    observability = _table(data, "observability")
    backends = _array_of_tables(data, "backends")
    return AgentConfig(
        coordinator_url=_required(coordinator, "coordinator", "url", _str),
        enrollment_code=_optional(coordinator, "coordinator", "enrollment_code", _str),
        key_path=_or(_optional(identity, "identity", "key_path", _str), DEFAULT_KEY_PATH),
        backends=tuple(_backend(table, f"backends[{i}]") for i, table in enumerate(backends)),
        pricing=_pricing(_table(data, "pricing", required=True)),
        limits=Limits(
            max_concurrent=_or(_optional(limits, "limits", "max_concurrent", _count), 8),
            max_tokens_per_minute=_optional(limits, "limits", "max_tokens_per_minute", _count),
        ),
        observability=Observability(
            prometheus_addr=_or(
                _optional(observability, "observability", "prometheus_addr", _str),
                DEFAULT_PROMETHEUS_ADDR,
            ),
            log_level=_or(_optional(observability, "observability", "log_level", _str), "info"),
        ),
        operator=Operator(
            display_name=_or(_optional(operator, "operator", "display_name", _str), ""),
            wallet=_or(_optional(operator, "operator", "wallet", _str), ""),
            contact_email=_optional(operator, "operator", "contact_email", _str),
        ),
        modelport=_modelport(_table(data, "modelport"), Path(source).absolute().parent),
    )


def _backend(table: dict[str, Any], path: str) -> BackendEntry:
    _refuse_unknown(table, path, BACKEND_FIELDS, "[[backends]]")
    models = _optional(table, path, "models", _str_list)
    return BackendEntry(
        kind=_required(table, path, "kind", _str),
        url=_optional(table, path, "url", _str),
        api_key_env=_optional(table, path, "api_key_env", _str),
        markup=_optional(table, path, "markup", _float),
        models=None if models is None else tuple(models),
    )


def _pricing(table: dict[str, Any]) -> Pricing:
    prices = _or(_optional(table, "pricing", "models", _table_value), {})
    models = {}
    for model_id, entry in prices.items():
        path = join_key("pricing.models", model_id)
        if not isinstance(entry, dict):
            raise AgentConfigError(f"expected table, got {toml_type(entry)}", key=path)
        models[model_id] = ModelPrice(
            input_per_1m=_required(entry, path, "input_per_1m", _count),
            output_per_1m=_required(entry, path, "output_per_1m", _count),
        )
    return Pricing(
        default_input_per_1m=_required(table, "pricing", "default_input_per_1m", _count),
        default_output_per_1m=_required(table, "pricing", "default_output_per_1m", _count),
        models=models,
    )


def _modelport(table: dict[str, Any], base: Path) -> ModelportSettings:
    """`[modelport]`: modelport's own table, so its keys are checked strictly."""
    _refuse_unknown(table, "modelport", MODELPORT_FIELDS, "[modelport]")
    defaults = ModelportSettings()
    ledger = _optional(table, "modelport", "ledger_path", _str)
    ledger_path = None
    if ledger is not None:
        # As modelport.toml's ledger: relative means next to the file, `~` is home.
        ledger_path = expand_home(ledger)
        ledger_path = ledger_path if ledger_path.is_absolute() else base / ledger_path
    rediscover = _optional(table, "modelport", "rediscover_s", _seconds)
    first_byte = _optional(table, "modelport", "first_byte_timeout_s", _seconds)
    discover = _optional(table, "modelport", "discover", _bool)
    return ModelportSettings(
        rediscover_s=_or(rediscover, defaults.rediscover_s),
        discover=_or(discover, defaults.discover),
        ledger_path=ledger_path,
        first_byte_timeout_s=_or(first_byte, defaults.first_byte_timeout_s),
    )


def _validate(config: AgentConfig, allow_insecure: bool) -> None:
    """config.rs `validate`, rule by rule, plus the checks of what only modelport uses."""
    _check_coordinator(config.coordinator_url, allow_insecure)
    seen: dict[tuple[str, str], int] = {}
    for index, backend in enumerate(config.backends):
        key = _backend_key(backend, f"backends[{index}]")
        if key in seen:
            raise AgentConfigError(
                f"duplicate backend entry for {key[0]} / {key[1]} "
                f"(the same as backends[{seen[key]}])",
                key=f"backends[{index}]",
            )
        seen[key] = index
    for name in ("default_input_per_1m", "default_output_per_1m"):
        if getattr(config.pricing, name) <= 0:
            raise AgentConfigError("must be > 0", key=f"pricing.{name}")
    low, high = MAX_CONCURRENT_RANGE
    if not low <= config.limits.max_concurrent <= high:
        raise AgentConfigError(
            f"must be in [{low}, {high}], got {config.limits.max_concurrent}",
            key="limits.max_concurrent",
        )
    _check_listen_addr(config.observability.prometheus_addr)


def _check_coordinator(url: str, allow_insecure: bool) -> None:
    key = "coordinator.url"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError as exc:
        raise AgentConfigError(f"is not a valid URL: {exc}", key=key) from None
    if parts.scheme == "wss" or (parts.scheme == "ws" and allow_insecure):
        if not parts.hostname:
            raise AgentConfigError("is not a valid URL: it names no host", key=key)
        return
    if parts.scheme == "ws":
        raise AgentConfigError(
            "must be wss:// in production (use --allow-insecure to allow ws://)", key=key
        )
    raise AgentConfigError(f"scheme must be wss or ws, got {parts.scheme or 'none'!r}", key=key)


def _backend_key(backend: BackendEntry, path: str) -> tuple[str, str]:
    """What makes a backend entry unique (config.rs): kind and url, or kind and key variable."""
    if backend.kind in KINDS_NEEDING_URL:
        if backend.url is None:
            raise AgentConfigError(f"is required for kind {backend.kind!r}", key=f"{path}.url")
        _check_engine_url(backend.url, f"{path}.url")
        return backend.kind, backend.url
    if backend.kind in KINDS_NEEDING_KEY:
        if backend.api_key_env is None:
            raise AgentConfigError(
                f"is required for kind {backend.kind!r}", key=f"{path}.api_key_env"
            )
        # Whether the variable is set is checked when the agent starts, as usepod-agent
        # does: `validate` must work offline, on a machine without the key.
        if backend.url is not None:
            _check_engine_url(backend.url, f"{path}.url")
        return backend.kind, backend.api_key_env
    known = ", ".join(KINDS_NEEDING_URL + KINDS_NEEDING_KEY)
    raise AgentConfigError(f"unknown kind {backend.kind!r} (kinds: {known})", key=f"{path}.kind")


def _check_engine_url(url: str, key: str) -> None:
    """An engine is dialled over HTTP, so the URL must say http(s) and a host."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError as exc:
        raise AgentConfigError(f"is not a valid URL: {exc}", key=key) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AgentConfigError("is not a valid URL: expected http(s)://host[:port]", key=key)


def _check_listen_addr(addr: str) -> None:
    """HOST:PORT (`[::1]:9090` for IPv6): the agent really listens there, usepod-agent never did."""
    if split_listen_addr(addr) is None:
        raise AgentConfigError(
            f"expected HOST:PORT, got {addr!r}", key="observability.prometheus_addr"
        )


def split_listen_addr(addr: str) -> tuple[str, int] | None:
    """ "127.0.0.1:9090", "[::1]:9090" or "localhost:0" -> (host, port); None when it is
    not HOST:PORT. The one reading, so `validate` accepts what `run` can listen on."""
    host, sep, port = addr.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        return None
    return host, int(port)


# -- reading one key ---------------------------------------------------------------


def _table(data: dict[str, Any], name: str, *, required: bool = False) -> dict[str, Any]:
    value = data.get(name)
    if value is None:
        if required:
            raise AgentConfigError("required key missing", key=name)
        return {}
    if not isinstance(value, dict):
        raise AgentConfigError(f"expected table, got {toml_type(value)}", key=name)
    return value


def _array_of_tables(data: dict[str, Any], name: str) -> list[dict[str, Any]]:
    value = data.get(name, [])
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise AgentConfigError(f"expected array of tables, got {toml_type(value)}", key=name)
    return value


def _required(table: dict[str, Any], path: str, name: str, read: Callable[[Any], T]) -> T:
    if name not in table:
        raise AgentConfigError("required key missing", key=join_key(path, name))
    return _optional(table, path, name, read)  # type: ignore[return-value]


def _optional(table: dict[str, Any], path: str, name: str, read: Callable[[Any], T]) -> T | None:
    if name not in table:
        return None
    try:
        return read(table[name])
    except _Mismatch as exc:
        raise AgentConfigError(str(exc), key=join_key(path, name)) from None


def _or(value: T | None, default: T) -> T:
    """The key's value, or its default when the file leaves it out (serde's `default`)."""
    return default if value is None else value


class _Mismatch(Exception):
    """A value of the wrong type or range; the caller adds the key."""


def _expect(value: object, wanted: str) -> _Mismatch:
    return _Mismatch(f"expected {wanted}, got {toml_type(value)}")


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise _expect(value, "str")
    return value


def _bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise _expect(value, "bool")
    return value


def _count(value: object) -> int:
    """usepod-agent's u32/u64 fields: a whole number, not negative."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise _expect(value, "int")
    if value < 0:
        raise _Mismatch(f"must be >= 0, got {value}")
    return value


def _float(value: object) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise _expect(value, "float")
    return float(value)


def _seconds(value: object) -> float:
    seconds = _float(value)
    if not seconds > 0 or seconds == float("inf"):
        raise _Mismatch(f"must be a number of seconds > 0, got {value}")
    return seconds


def _str_list(value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _expect(value, "array of strings")
    return value


def _table_value(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _expect(value, "table")
    return value


def _refuse_unknown(table: dict[str, Any], path: str, known: tuple[str, ...], what: str) -> None:
    for name in table:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise AgentConfigError(
                f"unknown key ({hint}{what} takes {', '.join(known)})",
                key=join_key(path, name),
            )


def _warn_ignored(data: dict[str, Any], source: str) -> None:
    """Keys usepod-agent's serde structs ignore are ignored here too, but not in silence."""
    for path, known in KNOWN_KEYS.items():
        table = data if not path else data.get(path)
        if not isinstance(table, dict):
            continue
        for name in table:
            if name not in known:
                log.warning("%s: %s: unknown key, ignored", source, join_key(path, name))


def expand_home(path: str) -> Path:
    """`~` and `~/...` are the home directory (config.rs `expand_home`); `~user` is not."""
    if path == "~":
        return Path.home()
    if path.startswith("~/"):
        return Path.home() / path[2:]
    return Path(path)
