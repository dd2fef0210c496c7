"""Finding `modelport.toml` and turning its text into a checked Config.

Three steps, each with its own messages: TOML syntax (tomllib), the schema's types and
keys (`shape`, walking the raw tables), then the rules types cannot express (`check`).
`msgspec.convert` runs only on data the walk has passed, so it has nothing left to say.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import msgspec
import platformdirs

from modelport.config.check import check_config, check_host, check_port
from modelport.config.errors import ConfigError
from modelport.config.schema import FILE_NAME, LEDGER_OFF, Config
from modelport.config.shape import check_shape

__all__ = [
    "CONFIG_ENV",
    "default_config_path",
    "find_config",
    "load_config",
    "parse_config",
    "with_overrides",
]

CONFIG_ENV = "MODELPORT_CONFIG"


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
    return _anchor_agents_file(_anchor_ledger(config, found.parent), found.parent), found


def _anchor_ledger(config: Config, base: Path) -> Config:
    """A relative ledger path means next to the config file, not wherever serve started."""
    ledger = config.server.ledger
    if ledger in ("", LEDGER_OFF) or Path(ledger).expanduser().is_absolute():
        return config
    server = msgspec.structs.replace(config.server, ledger=str(base / ledger))
    return msgspec.structs.replace(config, server=server)


def _anchor_agents_file(config: Config, base: Path) -> Config:
    """So is a relative `[hub] agents_file`: `hub add-agent` and `serve` share one file."""
    given = config.hub.agents_file
    if not given or Path(given).expanduser().is_absolute():
        return config
    hub = msgspec.structs.replace(config.hub, agents_file=str(base / given))
    return msgspec.structs.replace(config, hub=hub)


def parse_config(
    text: str, *, source: str = FILE_NAME, env: Mapping[str, str] = os.environ
) -> Config:
    """Parse and check a config file's text; `source` prefixes every error message.

    `env` is accepted for symmetry with the other functions but not consulted: validity
    never depends on which variables happen to be set.
    """
    try:
        data = tomllib.loads(text)
        check_shape(data, Config)
        config = msgspec.convert(data, Config)
        check_config(config, _backend_keys(data))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}", source=source) from None
    except ConfigError as exc:
        raise ConfigError(exc.problem, key=exc.key, source=source) from None
    return config


def _backend_keys(data: dict[str, Any]) -> list[Collection[str]]:
    """The keys each [[backends]] table had, in the file's order (shape has checked them)."""
    return [list(table) for table in data.get("backends", [])]


def with_overrides(config: Config, *, host: str | None = None, port: int | None = None) -> Config:
    """The config with `serve --host/--port` applied, checked like the file's own values."""
    server = config.server
    if host is not None:
        check_host("--host", host)
        server = msgspec.structs.replace(server, host=host)
    if port is not None:
        check_port("--port", port)
        server = msgspec.structs.replace(server, port=port)
    return msgspec.structs.replace(config, server=server)
