"""Claude Code, Codex CLI and opencode one-shot through a gateway in hub mode whose only
backend is a remote agent: a real `modelport agent run` process, with its own agent.toml
and identity file (usepod-agent's formats), admitted by `[hub] agent_keys`, lending three
engine fakes. The scenarios are test_agent_scenarios.py's (scenarios.py); which engine
each runs on through the hub is agent_specs.py's `hub_*` (what "passthrough" and
"transcoded" mean for a job is said there). One more case has the UsepodAgent fake
(usepod-agent 0.3.3, OpenAI jobs only) as the remote agent, for Codex.

One hub, one agent process, one UsepodAgent and the engine fakes serve the whole module
(the agent process takes seconds to start; CI has 2 cores). Each engine kind serves its
models under names of its own (`some-model-localai`), so the hub routes a model to exactly
one engine behind the agent; `served` hands a test its engine with the record and replies
of the previous test cleared.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from modelport.agent.identity import load_or_create
from modelport.gateway.server import Gateway
from modelport.hub.access import provider_id_for
from modelport.wire.provider import JobDone
from tests.clients import scenarios
from tests.clients.agent_specs import CLAUDE_CODE, CODEX, Engine
from tests.clients.helpers import (
    MODEL,
    SYSTEM_PATH,
    VISION_MODEL,
    WORDS,
    Served,
    Workspace,
    run_agent,
)
from tests.clients.scenarios import Case, per_agent
from tests.fakes import FakeEngine, Reply
from tests.fakes.usepod_agent import UsepodAgent
from tests.gateway_harness import make_config

pytestmark = pytest.mark.asyncio(loop_scope="module")

#: the engines behind the modelport agent; "vllm" is the UsepodAgent's
AGENT_KINDS = ("anthropic", "openai", "localai")
USEPOD_KIND = "vllm"
ENGINE_KEY_ENV = "FAKE_ENGINE_KEY"
READY_WITHIN_S = 60.0  # the agent process starts (imports, engines read once) and joins
STOP_WITHIN_S = 10.0
#: Claude Code's run when the engine stalls: time to start and send its request (~1 s)
KILLED_AFTER_S = 8.0
#: what the agents ask per 1M tokens in, out (agent.toml's [pricing]; UsepodAgent's default)
PRICES = (500_000, 750_000)


def served_name(model: str, kind: str) -> str:
    """The name the engine of `kind` serves `model` under (the fakes read capabilities,
    such as vision, from the name, so the suffix keeps them)."""
    return f"{model}-{kind}"


@dataclass
class Team:
    """The hub, what lends it engines, and those engines, by kind."""

    gateway: Gateway
    url: str
    fakes: dict[str, FakeEngine]
    agent: asyncio.subprocess.Process
    agent_id: str  # the modelport agent's provider id
    agent_log: Path
    usepod: UsepodAgent
    ledger: Path  # the hub's
    agent_ledger: Path

    def agent_said(self) -> str:
        return self.agent_log.read_text(errors="replace")[-4000:]


def agent_toml(hub_url: str, key_path: Path, fakes: dict[str, FakeEngine], root: Path) -> str:
    """agent.toml as usepod-agent's agent.example.toml lays it out, plus modelport's kinds
    (localai; openai and anthropic with a `url`) and its `[modelport]` table: discovery off
    (only these engines), the ledger in the test's directory."""
    backends = "".join(
        f'[[backends]]\nkind = "{kind}"\nurl = "{fake.url}"\n'
        + ("" if kind == "localai" else f'api_key_env = "{ENGINE_KEY_ENV}"\n')
        + "\n"
        for kind, fake in fakes.items()
    )
    return (
        '[operator]\ndisplay_name = "ci-box"\n\n'
        f'[coordinator]\nurl = "{hub_url.replace("http://", "ws://")}/provider/connect"\n\n'
        f'[identity]\nkey_path = "{key_path}"\n\n'
        f"{backends}"
        f"[pricing]\ndefault_input_per_1m = {PRICES[0]}\ndefault_output_per_1m = {PRICES[1]}\n\n"
        "[limits]\nmax_concurrent = 4\n\n"
        '[observability]\nprometheus_addr = "127.0.0.1:0"\nlog_level = "info"\n\n'
        f'[modelport]\ndiscover = false\nledger_path = "{root / "agent-ledger.sqlite3"}"\n'
    )


async def start_engine(kind: str) -> FakeEngine:
    models = [served_name(MODEL, kind), served_name(VISION_MODEL, kind)]
    # Claude Code alone sends about 15k tokens of system prompt and tools.
    fake = FakeEngine(kind, models=models, context_window=1_000_000)
    fake.default_reply = Reply(text=WORDS)
    await fake.start()
    return fake


async def start_agent_process(config: Path, home: Path, log: Path) -> asyncio.subprocess.Process:
    """`modelport agent --config agent.toml --allow-insecure run` (ws:// on 127.0.0.1)."""
    env = {"PATH": SYSTEM_PATH, "HOME": str(home), "LANG": "C.UTF-8", ENGINE_KEY_ENV: "k"}
    with log.open("wb") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "import sys; from modelport.cli import main; sys.argv[0] = 'modelport'; main()",
            "agent",
            "--config",
            str(config),
            "--allow-insecure",
            "run",
            cwd=home,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
        )


async def stop_process(process: asyncio.subprocess.Process) -> int:
    """SIGTERM (the agent drains and stops), SIGKILL past STOP_WITHIN_S; its exit code."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), STOP_WITHIN_S)
        except TimeoutError:
            process.kill()
            await process.wait()
    return await process.wait()


async def wait_for_models(team: Team, names: set[str]) -> None:
    """Until the hub's /v1/models lists every one of `names` (the agents joined)."""
    async with aiohttp.ClientSession() as http:
        for _ in range(int(READY_WITHIN_S / 0.2)):
            async with http.get(team.url + "/v1/models") as answer:
                listed = {m["id"] for m in (await answer.json())["data"]}
            if names <= listed:
                return
            if team.agent.returncode is not None:
                break
            await asyncio.sleep(0.2)
    pytest.fail(f"the agents never offered {sorted(names)}; the agent said:\n{team.agent_said()}")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def team(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Team]:
    root = tmp_path_factory.mktemp("hub-team")
    home = root / "agent-home"
    home.mkdir()
    async with contextlib.AsyncExitStack() as stack:
        fakes: dict[str, FakeEngine] = {}
        for kind in (*AGENT_KINDS, USEPOD_KIND):
            fakes[kind] = await start_engine(kind)
            stack.push_async_callback(fakes[kind].stop)
        identity = load_or_create(root / "identity.key")  # identity.rs's file, made before run
        usepod = UsepodAgent("ws://unused", fakes[USEPOD_KIND].url, seed=os.urandom(32))
        hub_toml = (
            "[hub]\nenabled = true\n"
            f'agent_keys = ["{identity.public_key_b64}", "{usepod.pubkey}"]\n'
            f'agents_file = "{root / "hub-agents.json"}"\n'
        )
        ledger = root / "usage.sqlite3"
        gateway = Gateway(make_config(hub_toml, ledger=ledger, server={"embedded": False}), env={})
        url = await gateway.start()
        stack.push_async_callback(gateway.stop, 0)
        agent_config = root / "agent.toml"
        lent = {kind: fakes[kind] for kind in AGENT_KINDS}
        agent_config.write_text(agent_toml(url, identity.path, lent, root))
        process = await start_agent_process(agent_config, home, root / "agent.log")
        stack.push_async_callback(stop_process, process)
        usepod.hub_url = url.replace("http://", "ws://") + "/provider/connect"
        await usepod.start()
        stack.push_async_callback(usepod.aclose)
        team = Team(
            gateway,
            url,
            fakes,
            process,
            provider_id_for(identity.public_key_b64),
            root / "agent.log",
            usepod,
            ledger,
            root / "agent-ledger.sqlite3",
        )
        await wait_for_models(team, {served_name(MODEL, k) for k in (*AGENT_KINDS, USEPOD_KIND)})
        yield team
        assert await stop_process(process) == 0, team.agent_said()  # a clean stop


@pytest.fixture
def served(team: Team) -> Served:
    """This module's `served`: the team's engine of `kind`, as fresh as a new fake (what it
    recorded and any scripted replies cleared), the hub's URL, and the model's name there."""

    async def serve(kind: str, model: str = MODEL) -> tuple[FakeEngine, str, str]:
        fake = team.fakes[kind]
        fake.requests.clear()
        fake.replies.clear()
        fake.reply_for = None
        fake.default_reply = Reply(text=WORDS)
        if team.agent.returncode is not None:
            pytest.fail(f"the agent process ended; it said:\n{team.agent_said()}")
        return fake, team.url, served_name(model, kind)

    return serve


#: what a ledger's tables hold of each request: `requests` (model, format, backend,
#: passthrough, error); `sales` (backend, error, price in, price out per 1M tokens)
QUERIES = {
    "requests": "SELECT model, format, backend, passthrough, error FROM requests WHERE time >= ?",
    "sales": "SELECT backend, error, price_in_per_1m, price_out_per_1m FROM sales WHERE time >= ?",
}
Row = tuple[Any, ...]


def read_rows(ledger: Path, since: float, table: str) -> list[Row]:
    if not ledger.exists():
        return []
    with contextlib.closing(sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)) as db:
        rows: list[Row] = db.execute(QUERIES[table], (since,)).fetchall()
    return rows


async def rows_since(ledger: Path, since: float, table: str = "requests") -> list[Row]:
    """The rows a ledger's `table` got since `since` (its writer thread is a moment behind
    the answer: wait until some are there)."""
    rows: list[Row] = []
    for _ in range(50):
        rows = read_rows(ledger, since, table)
        if rows:
            break
        await asyncio.sleep(0.1)
    return rows


async def settled_at_the_agents_price(team: Team, since: float, backend: str) -> None:
    """Every request since `since` was sold by `backend` at the price it advertised."""
    await rows_since(team.ledger, since)  # the hub's writer got to them
    for _ in range(20):  # the two tables are read one after the other: until they agree
        requests = read_rows(team.ledger, since, "requests")
        sales = read_rows(team.ledger, since, "sales")
        if len(sales) == len(requests):
            break
        await asyncio.sleep(0.1)
    assert len(sales) == len(requests), (sales, requests)
    assert set(sales) == {(backend, "", *PRICES)}, sales


async def through_the_agent(
    team: Team, case: Case, scenario: Callable[[Case], Awaitable[None]]
) -> None:
    """Run `scenario`, then check with both ledgers that the hub sent every request to the
    agent process as a job in the coding agent's format, and that the agent relayed each
    job to its engine (passthrough) or translated it (transcoded), as the case says."""
    since = time.time()
    await scenario(case)
    hub_rows = await rows_since(team.ledger, since)
    assert hub_rows, "the hub recorded no request"
    # Complete, every one: none cut short (a client that leaves once it has its answer)
    assert {(row[2], row[4]) for row in hub_rows} == {(f"agent:{team.agent_id}", "")}, hub_rows
    await settled_at_the_agents_price(team, since, f"agent:{team.agent_id}")
    jobs = await rows_since(team.agent_ledger, since)
    assert jobs, "the agent recorded no job"
    relayed = case.engine.role == "passthrough"
    assert {(row[1], bool(row[3]), row[4]) for row in jobs} == {
        (case.agent.hub_job_format, relayed, "")
    }, jobs


@pytest.mark.parametrize("case", per_agent(lambda a: a.hub_engines[:1]), indirect=True)
async def test_agent_prints_the_engines_words(case: Case, team: Team) -> None:
    await through_the_agent(team, case, scenarios.prints_the_engines_words)


@pytest.mark.parametrize("case", per_agent("hub_engines"), indirect=True)
async def test_agent_runs_the_tool_the_engine_asks_for(case: Case, team: Team) -> None:
    await through_the_agent(team, case, scenarios.reads_the_marker)


@pytest.mark.parametrize("case", per_agent(lambda a: (a.hub_thinking_engine,)), indirect=True)
async def test_agent_takes_thinking_before_a_tool_call(case: Case, team: Team) -> None:
    await through_the_agent(team, case, scenarios.takes_thinking_before_a_tool_call)


@pytest.mark.parametrize("case", per_agent(lambda a: (a.hub_image_engine,)), indirect=True)
async def test_agent_passes_an_image_to_the_engine(case: Case, team: Team) -> None:
    await through_the_agent(team, case, scenarios.passes_an_image_to_the_engine)


USEPOD_CASE = (CODEX, Engine(USEPOD_KIND, "/v1/chat/completions", "usepod"))


@pytest.mark.parametrize("case", [pytest.param(USEPOD_CASE, id="codex-usepod-vllm")], indirect=True)
async def test_a_usepod_agent_serves_a_tool_round_trip(case: Case, team: Team) -> None:
    """usepod-agent 0.3.3 relays the OpenAI job to its engine as it came and its bytes back
    (tests/fakes/usepod_agent.py); the hub transcodes them into Codex's Responses."""
    since = time.time()
    done_before = sum(isinstance(f, JobDone) for f in team.usepod.frames_sent)
    await scenarios.reads_the_marker(case)
    # Both turns (the tool call, then the answer) were jobs of the usepod agent.
    assert sum(isinstance(f, JobDone) for f in team.usepod.frames_sent) - done_before >= 2
    hub_rows = await rows_since(team.ledger, since)
    usepod = f"agent:{provider_id_for(team.usepod.pubkey)}"
    assert {(row[2], row[4]) for row in hub_rows} == {(usepod, "")}, hub_rows
    await settled_at_the_agents_price(team, since, usepod)


async def test_a_coding_agent_killed_mid_answer_cancels_the_job_at_the_engine(
    served: Served, team: Team, workspace: Workspace, claude_bin: Path
) -> None:
    """The engine stalls after its first words; Claude Code is killed waiting (its run's
    timeout). The hub sees its client go, sends job_cancel; the agent process closes its
    request to the engine; both ledgers record the request as cancelled."""
    fake, url, model = await served("anthropic")
    fake.default_reply = Reply(text=WORDS, chunk_chars=4, hang_after_chunks=2)
    disconnects = fake.disconnects
    since = time.time()
    env = CLAUDE_CODE.configure(workspace, url, model, False)
    argv = CLAUDE_CODE.argv(claude_bin, "say hi")
    run = await run_agent(argv, workspace, env=env, timeout_s=KILLED_AFTER_S)
    assert run.returncode is None, run.explain()  # still waiting when killed
    assert await fake.wait_disconnects(disconnects + 1, within=5) > disconnects
    hub_rows = await rows_since(team.ledger, since)
    assert {(row[2], row[4]) for row in hub_rows} == {(f"agent:{team.agent_id}", "Cancelled")}
    jobs = await rows_since(team.agent_ledger, since)
    assert jobs and {row[4] for row in jobs} == {"Cancelled"}, jobs
