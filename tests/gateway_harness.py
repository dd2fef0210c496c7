"""A `gateway` fixture: a real Gateway on 127.0.0.1, port 0, over protocol fakes.

    gw, url = await gateway(backends=[{"kind": "vllm", "url": fake.url}])
    gw, url = await gateway('[[backends]]\\nkind = "vllm"\\nurl = "..."', env={...})

Discovery is always off and the ledger goes to the test's tmp_path. Server settings the
config checks would refuse or that need the environment (port 0) are applied after parsing.
Every gateway started is stopped at teardown, and the clients made by `openai_client` /
`anthropic_client` are closed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
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
    backends: list[Mapping[str, Any]] = (),  # type: ignore[assignment]
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
    ) -> tuple[Gateway, str]:
        config = make_config(
            toml,
            backends=backends,
            aliases=aliases,
            ledger=tmp_path / "usage.sqlite3" if ledger else "off",
            server=server,
        )
        gw = Gateway(config, env=dict(env or {}))
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
