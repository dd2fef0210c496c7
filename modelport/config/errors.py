"""The one error a config can raise, and how its messages spell a key."""

from __future__ import annotations

import re

import msgspec

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


class ConfigError(Exception):
    """A config that cannot be used. The message names the file and the key at fault."""

    def __init__(self, problem: str, *, key: str = "", source: str = "") -> None:
        self.problem = problem
        self.key = key
        self.source = source
        super().__init__(": ".join(part for part in (source, key, problem) if part))


def join_key(path: str, name: str) -> str:
    """`path` and a table key below it, the key written as TOML would write it."""
    part = name if _BARE_KEY.fullmatch(name) else msgspec.json.encode(name).decode()
    return f"{path}.{part}" if path else part
