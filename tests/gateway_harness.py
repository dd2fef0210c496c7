"""Fixtures for gateway tests (registered in conftest.py as a pytest plugin).

`gateway`: a real Gateway on 127.0.0.1, port 0, over protocol fakes:

    gw, url = await gateway(backends=[{"kind": "vllm", "url": fake.url}], aliases={...})
    gw, url = await gateway('[[backends]]\\nkind = "vllm"\\nurl = "..."', env={...})

Discovery is always off and the ledger goes to the test's tmp_path. `server={...}` settings
(and port 0, which the config check refuses) are applied after parsing. Every gateway
started is stopped at teardown.

`clients`: `clients("openai" | "anthropic", url, key=...)` makes an official SDK client
with retries off; all are closed at teardown. `until`, `admission_state` and `settled`
poll the gateway's state without fixed sleeps.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import anthropic
import msgspec
import openai
import pytest

from modelport.config import Config, parse_config
from modelport.gateway.server import Gateway

GatewayFactory = Callable[..., Awaitable[tuple[Gateway, str]]]


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def config_toml(
    backends: Sequence[Mapping[str, Any]] = (),
    aliases: Mapping[str, list[str]] | None = None,
) -> str:
    """TOML text for a list of backend tables and an alias table."""
    lines: list[str] = []
    for backend in backends:
        lines.append("[[backends]]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in backend.items()]
    if aliases:
        lines.append("[aliases]")
        lines += [f"{json.dumps(name)} = {_toml_value(list(t))}" for name, t in aliases.items()]
    return "\n".join(lines) + "\n"


def make_config(
    toml: str = "",
    *,
    backends: list[Mapping[str, Any]] | None = None,
    aliases: Mapping[str, list[str]] | None = None,
    ledger: Path | str = "off",
    server: Mapping[str, Any] | None = None,
) -> Config:
    text = toml + (config_toml(backends or [], aliases) if backends or aliases else "")
    config = parse_config(text)
    overrides: dict[str, Any] = {"port": 0, "ledger": str(ledger), **(server or {})}
    discovery = msgspec.structs.replace(config.discovery, enabled=False)
    return msgspec.structs.replace(
        config,
        server=msgspec.structs.replace(config.server, **overrides),
        discovery=discovery,
    )


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[GatewayFactory]:
    """`gw, url = await gateway(toml_or_none, backends=[...], aliases=..., server=..., env=...)`."""
    started: list[Gateway] = []

    async def start(
        toml: str = "",
        *,
        backends: list[Mapping[str, Any]] | None = None,
        aliases: Mapping[str, list[str]] | None = None,
        server: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        ledger: bool = True,
        **gateway: Any,
    ) -> tuple[Gateway, str]:
        """`gateway`: more of Gateway's own arguments (`forget_gone_backend_s`, ...)."""
        config = make_config(
            toml,
            backends=backends,
            aliases=aliases,
            ledger=tmp_path / "usage.sqlite3" if ledger else "off",
            server=server,
        )
        gw = Gateway(config, env=dict(env or {}), **gateway)
        url = await gw.start()
        started.append(gw)
        return gw, url

    yield start
    for gw in reversed(started):
        await gw.stop(grace_s=0)


@pytest.fixture
async def clients() -> AsyncIterator[Callable[..., Any]]:
    """`oc = clients("openai", url, key="...")`: SDK clients without retries, closed at teardown."""
    made: list[Any] = []

    def make(kind: str, url: str, key: str = "unused", **kw: Any) -> Any:
        if kind == "openai":
            client: Any = openai.AsyncOpenAI(
                base_url=url + "/v1", api_key=key, max_retries=0, timeout=10.0, **kw
            )
        else:
            client = anthropic.AsyncAnthropic(
                base_url=url, api_key=key, max_retries=0, timeout=10.0, **kw
            )
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


async def until(condition: Callable[[], bool], within: float = 2.0) -> bool:
    """Poll `condition` every 10 ms for up to `within` seconds; whether it came true."""
    for _ in range(max(1, int(within / 0.01))):
        if condition():
            return True
        await asyncio.sleep(0.01)
    return condition()


def admission_state(gw: Gateway) -> list[tuple[int, int]]:
    """(in_flight, queued) of every upstream, in config order."""
    return [(u.admission.in_flight, u.admission.queued) for u in gw.router.upstreams]


async def settled(gw: Gateway, within: float = 2.0) -> list[tuple[int, int]]:
    """`admission_state` once every upstream is at (0, 0), or when `within` has passed."""
    await until(lambda: all(s == (0, 0) for s in admission_state(gw)), within)
    return admission_state(gw)
