"""`modelport agent status` (render_status): the identity file read without creating it, the
backends, whether the agent runs (a real metrics server), and the real ledger's totals."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path

from modelport.agent.config import (
    AgentConfig,
    BackendEntry,
    ModelportSettings,
    Observability,
)
from modelport.agent.metrics import serve_metrics
from modelport.agent.stats import AgentStats
from modelport.agent.status import read_identity, render_status
from modelport.gateway.ledger import Ledger, earnings_totals
from modelport.records import RequestRecord

# usepod-agent's identity format (src/identity.rs `serialize`), with a made-up key pair.
IDENTITY = """-----BEGIN USEPOD AGENT KEY-----
version: 1
created: 2026-11-02T09:15:00+00:00
secret: c2VjcmV0LXNlZWQtbmV2ZXItc2hvd24tYW55d2hlcmUhIQ==
public: 5Kd3NBUAdUnhyzenEwVLy9pBKxSwXvE9FMPyR4UKZvpe
provider_id: prov_1a2b3c4d5e6f708192a3b4c5
-----END USEPOD AGENT KEY-----
"""


def job(
    job_id: str,
    model: str,
    tin: int,
    tout: int,
    *,
    age_s: float,
    error: str = "",
    price: tuple[int, int] = (500_000, 750_000),
) -> RequestRecord:
    return RequestRecord(
        request_id=job_id,
        format="openai",
        endpoint="chat",
        model=model,
        backend="ollama:http://127.0.0.1:11434",
        status=200,
        stream=True,
        input_tokens=tin,
        output_tokens=tout,
        duration_ms=900.0,
        error=error,
        time=time.time() - age_s,
        price_in_per_1m=price[0],
        price_out_per_1m=price[1],
    )


def write_ledger(path: Path) -> None:
    ledger = Ledger(path)
    ledger.start()
    ledger.record(job("j1", "llama3.1:8b", 120_000, 35_000, age_s=60))
    ledger.record(job("j2", "llama3.1:8b", 80_000, 41_000, age_s=3600))
    ledger.record(job("j3", "llama3.1:8b", 3_000, 12, age_s=7200, error="TimedOut"))
    ledger.record(
        job("j4", "qwen2.5:7b", 1_000_000, 200_000, age_s=2 * 86400, price=(300_000, 450_000))
    )
    ledger.close()


def agent_config(tmp_path: Path, prometheus_addr: str) -> AgentConfig:
    return AgentConfig(
        coordinator_url="wss://hub.example.com/provider/connect",
        key_path=str(tmp_path / "identity.key"),
        backends=(
            BackendEntry(kind="ollama", url="http://localhost:11434"),
            BackendEntry(kind="openrouter", api_key_env="OPENROUTER_API_KEY", markup=0.05),
            BackendEntry(
                kind="vllm",
                url="http://gpu-box:8000",
                models=("meta-llama/Llama-3.3-70B-Instruct",),
            ),
        ),
        observability=Observability(prometheus_addr=prometheus_addr),
        modelport=ModelportSettings(ledger_path=tmp_path / "agent-ledger.sqlite3"),
    )


EXPECTED = """\
identity     /home/op/.usepod-agent/identity.key
public key   5Kd3NBUAdUnhyzenEwVLy9pBKxSwXvE9FMPyR4UKZvpe
provider id  prov_1a2b3c4d5e6f708192a3b4c5
coordinator  wss://hub.example.com/provider/connect
backends     ollama      http://localhost:11434
             openrouter  key from $OPENROUTER_API_KEY (set)
             vllm        http://gpu-box:8000; models: meta-llama/Llama-3.3-70B-Instruct
             + engines found on this machine (every 300 s)
agent        running, connected to the hub (metrics at http://127.0.0.1:9090/metrics)
ledger       /home/op/.local/share/modelport/agent-ledger.sqlite3

jobs, all time
  model        jobs  errors  tokens in  tokens out  earned USDC
  llama3.1:8b     3       1    203,000      76,012     0.157000
  qwen2.5:7b      1       0  1,000,000     200,000     0.390000
  total           4       1  1,203,000     276,012     0.547000

jobs, last 24 h
  model        jobs  errors  tokens in  tokens out  earned USDC
  llama3.1:8b     3       1    203,000      76,012     0.157000
  total           3       1    203,000      76,012     0.157000
"""


async def test_status_of_a_running_connected_agent(tmp_path: Path) -> None:
    (tmp_path / "identity.key").write_text(IDENTITY)
    write_ledger(tmp_path / "agent-ledger.sqlite3")
    stats = AgentStats(AgentConfig())
    stats.connected(True)
    runner = await serve_metrics("127.0.0.1:0", stats)
    try:
        port = runner.addresses[0][1]
        cfg = agent_config(tmp_path, f"127.0.0.1:{port}")
        env = {"OPENROUTER_API_KEY": "sk-or-v1-secret"}
        text = await asyncio.to_thread(render_status, cfg, env=env)
        stats.connected(False)
        later = await asyncio.to_thread(render_status, cfg, env={})
    finally:
        await runner.cleanup()
    shown = (
        text.replace(f"{tmp_path}/identity.key", "/home/op/.usepod-agent/identity.key")
        .replace(str(tmp_path), "/home/op/.local/share/modelport")
        .replace(f"127.0.0.1:{port}", "127.0.0.1:9090")
    )
    assert shown == EXPECTED
    assert "c2VjcmV0" not in text and "sk-or-v1-secret" not in text  # no secret shown
    assert "running, not connected to the hub" in later
    assert "key from $OPENROUTER_API_KEY (NOT SET)" in later


async def test_status_when_nothing_runs_and_no_identity_exists(
    tmp_path: Path, refused_url: str
) -> None:
    cfg = agent_config(tmp_path, refused_url.removeprefix("http://"))
    text = await asyncio.to_thread(render_status, cfg, env={}, timeout_s=0.5)
    assert "no identity yet" in text
    assert not (tmp_path / "identity.key").exists()  # status creates nothing
    assert f"agent        not running (nothing answers at {refused_url}/metrics)" in text
    assert text.endswith("no jobs recorded yet\n")
    assert not (tmp_path / "agent-ledger.sqlite3").exists()


def test_identity_reader_skips_the_secret_and_refuses_other_files(tmp_path: Path) -> None:
    path = tmp_path / "identity.key"
    path.write_text(IDENTITY)
    assert read_identity(path) == {
        "version": "1",
        "created": "2026-11-02T09:15:00+00:00",
        "public": "5Kd3NBUAdUnhyzenEwVLy9pBKxSwXvE9FMPyR4UKZvpe",
        "provider_id": "prov_1a2b3c4d5e6f708192a3b4c5",
    }
    path.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaA==\n")
    cfg = agent_config(tmp_path, "127.0.0.1:1")
    text = render_status(cfg, env={}, timeout_s=0.2)
    assert "cannot read it: not an agent identity file" in text
    assert "b3BlbnNzaA" not in text


def test_earnings_are_exact_and_only_for_jobs_that_succeeded(tmp_path: Path) -> None:
    path = tmp_path / "agent-ledger.sqlite3"
    write_ledger(path)
    day = {r.model: r for r in earnings_totals(path, since_s=86400)}
    assert day["llama3.1:8b"].usdc == Decimal("0.15700")  # j3 failed: it earns nothing
    every = {r.model: r for r in earnings_totals(path)}
    assert every["qwen2.5:7b"].usdc == Decimal(1_000_000 * 300_000 + 200_000 * 450_000) / 10**12
    assert (every["llama3.1:8b"].jobs, every["llama3.1:8b"].errors) == (3, 1)
