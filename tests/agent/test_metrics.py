"""serve_metrics: a real aiohttp server answering GET /metrics only, on loopback unless told."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from modelport.agent.config import AgentConfig, BackendEntry, ModelportSettings
from modelport.agent.engines import AgentEngines
from modelport.agent.metrics import MetricsAddressError, serve_metrics, split_addr
from modelport.agent.stats import AgentStats
from modelport.types import WireFormat

SECRET = "sk-or-v1-0123456789abcdef0123456789abcdef"


def url_of(runner: web.AppRunner) -> str:
    host, port = runner.addresses[0][:2]
    return f"http://{host}:{port}"


async def test_metrics_are_served_and_nothing_else() -> None:
    stats = AgentStats(AgentConfig())
    stats.connected(True)
    runner = await serve_metrics("127.0.0.1:0", stats)
    try:
        base = url_of(runner)
        async with aiohttp.ClientSession() as http:
            async with http.get(base + "/metrics") as resp:
                assert resp.status == 200
                assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
                text = await resp.text()
            assert "modelport_agent_connected 1.0" in text
            assert "python_gc" not in text  # its own registry: no process collectors
            for method, path in [
                ("GET", "/"),
                ("GET", "/metrics/"),
                ("GET", "/metrics/x"),
                ("POST", "/metrics"),
                ("DELETE", "/metrics"),
                ("GET", "/health"),
            ]:
                async with http.request(method, base + path) as resp:
                    assert resp.status == 404, (method, path)
    finally:
        await runner.cleanup()


async def test_a_public_address_needs_leave() -> None:
    stats = AgentStats(AgentConfig())
    with pytest.raises(MetricsAddressError, match="reachable from other machines"):
        await serve_metrics("0.0.0.0:0", stats)
    runner = await serve_metrics("0.0.0.0:0", stats, allow_public=True)
    await runner.cleanup()
    for loopback in ("localhost:0", "[::1]:0", "127.0.0.2:0"):
        host, port = split_addr(loopback)
        assert port == 0 and host in ("localhost", "::1", "127.0.0.2")


@pytest.mark.parametrize("addr", ["9090", ":9090", "127.0.0.1:", "127.0.0.1:http", "h:70000"])
def test_unreadable_addresses_are_refused(addr: str) -> None:
    with pytest.raises(MetricsAddressError, match="is not HOST:PORT"):
        split_addr(addr)


async def test_a_taken_port_says_so() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(MetricsAddressError, match=f"cannot serve metrics on 127.0.0.1:{port}"):
            await serve_metrics(f"127.0.0.1:{port}", AgentStats(AgentConfig()))


async def test_no_key_or_engine_address_reaches_a_label(fake_engine, tmp_path: Path) -> None:
    """Backends are labelled by their upstream name, models by name: a BYOK key and an
    engine's URL never show on the endpoint, even after a job."""
    openrouter = await fake_engine("openrouter", models=["vendor/model"], api_key=SECRET)
    cfg = AgentConfig(
        backends=(BackendEntry(kind="openrouter", url=openrouter.url, api_key_env="OR_KEY"),),
        modelport=ModelportSettings(discover=False, ledger_path=tmp_path / "ledger.sqlite3"),
    )
    stats = AgentStats(cfg)
    engines = await AgentEngines.start(
        cfg, observe=stats.observe, env={"OR_KEY": SECRET}, ports=(), on_backend=stats.backend_up
    )
    runner = await serve_metrics("127.0.0.1:0", stats)
    try:
        body = {"model": "vendor/model", "messages": [{"role": "user", "content": "hi"}]}
        reply = await engines.service.chat(WireFormat.OPENAI, json.dumps(body).encode())
        assert reply.status == 200
        async with aiohttp.ClientSession() as http, http.get(url_of(runner) + "/metrics") as r:
            text = await r.text()
        assert 'modelport_agent_backend_up{backend="openrouter"} 1.0' in text
        assert 'modelport_agent_tokens_total{direction="out",model="vendor/model"}' in text
        assert SECRET not in text and SECRET[:12] not in text
        assert openrouter.url.removeprefix("http://") not in text
    finally:
        await runner.cleanup()
        await engines.aclose()
