"""Issue 13 point 6: a team of real processes. `modelport serve --hub` from a modelport.toml
with `[hub]`, and `modelport agent` processes, each with its own agent.toml and identity
file (written as usepod-agent writes them, tests/hub/processes.py):

- "llama": over a llama.cpp protocol fake (kind llamacpp), admitted by `modelport hub
  add-agent PUBKEY`;
- "vllm": over a vLLM protocol fake, admitted by `[hub] agent_keys`;
- "real": over the bundled llama-server (started here; its tests fail when it is not
  installed, as tests/test_real_engine.py's do),
  admitted by an enrollment code;
- "spare": a short-lived agent a test starts (and kills) itself, over a vLLM fake, serving
  the model "shared" that "vllm" serves too, at a lower price (`policy = "price"`: it is
  tried first, "vllm" is the fallback); admitted by the enrollment code.

The hub, the three agents and their engines are started once for the module (the event
loop is the module's, so the fakes keep serving between tests); no test kills or revokes
them, so the tests run in any order. Every process is ended at teardown.

The heartbeat interval of a real agent is usepod's 15 s, with no knob in agent.toml: "an
agent added" is measured from the spare's start to its models in /v1/models (the
capabilities it pushes right after auth), against that interval; /v1/hub/agents' heartbeat
figures need the first heartbeat, 15 s after an agent joined.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import ollama
import openai
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from modelport.hub.access import provider_id_for
from tests.fakes.core import Reply
from tests.fakes.engine import FakeEngine
from tests.fakes.usepod_agent import UsepodAgent
from tests.hub.processes import (
    Engine,
    Proc,
    agent_toml,
    free_port,
    modelport,
    pubkey_b64,
    run_modelport,
    start_llama_server,
    until,
    wait_healthy,
    write_identity,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

API_KEY = "sk-team"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
CODE = "team-code-2026"
TEXT = "Hello from the fake."
HI = [{"role": "user", "content": "hi"}]
HEARTBEAT_S = 15.0  # usepod-agent's heartbeat.rs interval, which a modelport agent keeps
SLOW = Reply(text="word " * 100, chunk_chars=5, delay_s=0.05)  # about 5 s of stream
REAL_MODEL = "team-gemma"  # the bundled model, under llama-server's --alias


@dataclass
class Member:
    """One agent process and what it lends."""

    name: str
    proc: Proc
    key: Ed25519PrivateKey
    engine: FakeEngine | None = None

    @property
    def provider_id(self) -> str:
        return provider_id_for(pubkey_b64(self.key))

    @property
    def upstream(self) -> str:
        return f"agent-{self.provider_id[5:13]}"


@dataclass
class Team:
    home: Path
    config: Path
    hub: Proc
    url: str
    members: dict[str, Member] = field(default_factory=dict)
    procs: list[Proc] = field(default_factory=list)

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/provider/connect"

    def start_agent(
        self,
        name: str,
        engines: list[Engine],
        *,
        key: Ed25519PrivateKey | None = None,
        prices: tuple[int, int] = (2_000_000, 6_000_000),
        enrollment_code: str | None = None,
        max_concurrent: int = 4,
    ) -> tuple[Proc, Ed25519PrivateKey]:
        home = self.home / name
        key_path = home / "identity.key"
        key = write_identity(key_path, key)
        config = home / "agent.toml"
        config.write_text(
            agent_toml(
                hub_url=self.ws_url,
                key_path=key_path,
                engines=engines,
                prices=prices,
                enrollment_code=enrollment_code,
                max_concurrent=max_concurrent,
            )
        )
        proc = modelport(
            name, "agent", "run", "-c", str(config), "--allow-insecure", home=home, cwd=home
        )
        self.procs.append(proc)
        return proc, key

    async def agents(self) -> list[dict[str, Any]]:
        async with (
            aiohttp.ClientSession() as http,
            http.get(self.url + "/v1/hub/agents", headers=AUTH) as answer,
        ):
            assert answer.status == 200, await answer.text()
            document = await answer.json()
        return list(document["data"])

    async def models(self) -> list[dict[str, Any]]:
        async with (
            aiohttp.ClientSession() as http,
            http.get(self.url + "/v1/models", headers=AUTH) as answer,
        ):
            return list((await answer.json())["data"])

    async def wait_joined(self, provider_id: str, within: float = 30.0) -> float:
        """Until the agent's models are in /v1/models; the seconds it took."""
        start = time.monotonic()
        while True:
            models = await self.models()
            if any((m.get("agent") or {}).get("provider_id") == provider_id for m in models):
                return time.monotonic() - start
            if time.monotonic() - start > within:
                agents = await self.agents()
                raise AssertionError(f"{provider_id} not in /v1/models: {models}\n{agents}")
            await asyncio.sleep(0.05)

    async def wait_gone(self, provider_id: str, within: float = 10.0) -> float:
        start = time.monotonic()
        while any(a["provider_id"] == provider_id for a in await self.agents()):
            if time.monotonic() - start > within:
                raise AssertionError(f"{provider_id} still connected:\n{self.hub.tail()}")
            await asyncio.sleep(0.05)
        return time.monotonic() - start


def hub_toml(agent_keys: list[str]) -> str:
    keys = ", ".join(f'"{k}"' for k in agent_keys)
    return f"""\
[server]
host = "127.0.0.1"
port = {free_port()}
api_keys_env = ["MODELPORT_API_KEY"]
ledger = "usage.sqlite3"
embedded = false
request_timeout_s = 60

[discovery]
enabled = false

[hub]
agent_keys = [{keys}]
agents_file = "hub-agents.json"
policy = "price"
enrollment_codes = [
  {{ code = "{CODE}", reusable = true, expires_at = "2099-01-01T00:00:00Z" }},
]
"""


@pytest.fixture(scope="module")
def probe_key() -> Ed25519PrivateKey:
    """A key in `[hub] agent_keys` that no process uses: the auth tests sign with it."""
    return Ed25519PrivateKey.generate()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def engines() -> AsyncIterator[dict[str, FakeEngine]]:
    async with (
        FakeEngine("llamacpp", models=["team-llama"], context_window=8192) as llama,
        FakeEngine("vllm", models=["team-vllm", "shared"], context_window=32768) as vllm,
    ):
        yield {"llama": llama, "vllm": vllm}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def team(
    tmp_path_factory: pytest.TempPathFactory,
    engines: dict[str, FakeEngine],
    probe_key: Ed25519PrivateKey,
) -> AsyncIterator[Team]:
    home = tmp_path_factory.mktemp("team")
    llama_key, vllm_key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    config = home / "modelport.toml"
    config.write_text(hub_toml([pubkey_b64(vllm_key), pubkey_b64(probe_key)]))
    code, out = await run_modelport(
        "hub",
        "add-agent",
        pubkey_b64(llama_key),
        "--name",
        "llama-box",
        "-c",
        str(config),
        home=home,
    )
    assert code == 0 and provider_id_for(pubkey_b64(llama_key)) in out, out
    hub = modelport(
        "hub", "serve", "-c", str(config), "--hub", home=home, MODELPORT_API_KEY=API_KEY
    )
    team = Team(home, config, hub, "")
    try:
        found = await hub.wait_for(r"modelport serving on (http://\S+):", within=60)
        team.url = found.group(1)
        for name, kind in (("llama", "llamacpp"), ("vllm", "vllm")):
            engine = engines[name]
            key = llama_key if name == "llama" else vllm_key
            proc, _ = team.start_agent(name, [Engine(kind, engine.url)], key=key)
            team.members[name] = Member(name, proc, key, engine)
        for member in team.members.values():
            await team.wait_joined(member.provider_id)
        yield team
    finally:
        for proc in reversed(team.procs):
            proc.stop()
        hub.stop()
    assert "Traceback" not in hub.output(), hub.output()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def real(team: Team) -> AsyncIterator[Member]:
    """The agent over the bundled llama-server, joining with the enrollment code."""
    llama, url = start_llama_server(team.home, alias=REAL_MODEL)
    team.procs.insert(0, llama)  # stopped last
    await wait_healthy(llama, url)
    proc, key = team.start_agent(
        "real", [Engine("llamacpp", url)], enrollment_code=CODE, prices=(1_000_000, 3_000_000)
    )
    member = Member("real", proc, key)
    await team.wait_joined(member.provider_id, within=60)
    team.members["real"] = member
    yield member


@pytest_asyncio.fixture(loop_scope="module")
async def spare(team: Team) -> AsyncIterator[tuple[Member, float]]:
    """An agent started for one test over its own vLLM fake, serving "shared" cheaper than
    "vllm" does; the seconds from its start to its models in /v1/models. Killed at the
    end (if the test has not)."""
    async with FakeEngine("vllm", models=["shared"], context_window=16384) as engine:
        started = time.monotonic()
        proc, key = team.start_agent(
            f"spare-{len(team.procs)}",
            [Engine("vllm", engine.url)],
            enrollment_code=CODE,
            prices=(100_000, 200_000),
        )
        member = Member("spare", proc, key, engine)
        try:
            await team.wait_joined(member.provider_id)
            yield member, time.monotonic() - started
        finally:
            if proc.returncode is None:
                proc.kill()
            team.procs.remove(proc)


def openai_client(team: Team) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=team.url + "/v1", api_key=API_KEY, max_retries=0, timeout=60)


def anthropic_client(team: Team) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=team.url, api_key=API_KEY, max_retries=0, timeout=60)


async def dialects(team: Team, model: str) -> dict[str, str]:
    """One request in each client dialect, streamed and not, through the official SDKs;
    the text of each."""
    texts: dict[str, str] = {}
    oc, ac = openai_client(team), anthropic_client(team)
    oll = ollama.AsyncClient(host=team.url, headers=AUTH, timeout=60)
    try:
        chat = await oc.chat.completions.create(model=model, messages=HI, max_tokens=8)  # type: ignore[arg-type]
        texts["chat"] = chat.choices[0].message.content or ""
        assert chat.id.startswith("chatcmpl-"), chat.id
        stream = await oc.chat.completions.create(
            model=model, messages=HI, max_tokens=8, stream=True
        )  # type: ignore[arg-type]
        texts["chat stream"] = "".join(
            [c.choices[0].delta.content or "" async for c in stream if c.choices]
        )
        texts["responses"] = (
            await oc.responses.create(model=model, input="hi", max_output_tokens=16)
        ).output_text
        events = await oc.responses.create(
            model=model, input="hi", max_output_tokens=16, stream=True
        )
        texts["responses stream"] = "".join(
            [e.delta async for e in events if e.type == "response.output_text.delta"]
        )
        message = await ac.messages.create(model=model, max_tokens=8, messages=HI)  # type: ignore[arg-type]
        texts["messages"] = "".join(b.text for b in message.content if b.type == "text")
        assert message.id, message
        async with ac.messages.stream(model=model, max_tokens=8, messages=HI) as ms:  # type: ignore[arg-type]
            texts["messages stream"] = "".join([t async for t in ms.text_stream])
        options = {"num_predict": 8}
        whole = await oll.chat(model=model, messages=HI, options=options)
        texts["ollama"] = whole.message.content or ""
        parts = await oll.chat(model=model, messages=HI, options=options, stream=True)
        texts["ollama stream"] = "".join([p.message.content or "" async for p in parts])
    finally:
        await oc.close()
        await ac.close()
        await oll._client.aclose()
    return texts


# -- requests through agents ---------------------------------------------------------------


async def test_every_dialect_through_an_agent(team: Team) -> None:
    engine = team.members["llama"].engine
    assert engine is not None
    before = len(engine.requests_to("/v1/chat/completions")) + len(
        engine.requests_to("/v1/messages")
    )
    texts = await dialects(team, "team-llama")
    assert texts == dict.fromkeys(texts, TEXT), texts
    assert len(texts) == 8
    after = len(engine.requests_to("/v1/chat/completions")) + len(
        engine.requests_to("/v1/messages")
    )
    assert after - before == 8  # each one reached the engine behind the agent, once


async def test_every_dialect_through_an_agent_on_the_real_engine(team: Team, real: Member) -> None:
    texts = await dialects(team, REAL_MODEL)
    assert len(texts) == 8 and all(t.strip() for t in texts.values()), texts


async def test_a_cancel_when_the_client_leaves(team: Team) -> None:
    """The client closes its stream: the hub sends job_cancel, the agent closes its engine
    request (the fake sees it go)."""
    member = team.members["llama"]
    engine = member.engine
    assert engine is not None
    seen = engine.disconnects
    engine.replies.append(SLOW)
    body = {"model": "team-llama", "messages": HI, "stream": True}
    async with aiohttp.ClientSession() as http:
        answer = await http.post(team.url + "/v1/chat/completions", json=body, headers=AUTH)
        assert answer.status == 200
        assert await answer.content.readany()  # the first bytes came
        answer.close()  # the client goes
    assert await engine.wait_disconnects(seen + 1, within=5) == seen + 1
    await member.proc.wait_for("cancelled by the hub")
    # the agent's slot is free again: its next request is served
    oc = openai_client(team)
    try:
        chat = await oc.chat.completions.create(model="team-llama", messages=HI)  # type: ignore[arg-type]
    finally:
        await oc.close()
    assert chat.choices[0].message.content == TEXT


# -- agents that come and go ---------------------------------------------------------------


async def test_an_agent_added_is_routed_within_a_heartbeat(
    team: Team, spare: tuple[Member, float]
) -> None:
    member, joined_s = spare
    assert joined_s < HEARTBEAT_S, joined_s
    listed = [m for m in await team.models() if m["id"] == "shared"]
    # the cheaper agent first (policy "price"), with its prices, context window and name
    assert listed[0]["agent"]["provider_id"] == member.provider_id, listed
    assert (listed[0]["agent"]["input_per_1m"], listed[0]["agent"]["output_per_1m"]) == (
        100_000,
        200_000,
    )
    assert listed[0]["context_window"] == 16384
    print(f"agent added: its models in /v1/models {joined_s:.2f} s after its process started")


async def test_an_agent_killed_mid_stream(team: Team, spare: tuple[Member, float]) -> None:
    """SIGKILL while it streams: the client gets an error event at once; the next request
    for the model is served (by the other agent serving it)."""
    member, _ = spare
    assert member.engine is not None
    member.engine.replies.append(SLOW)
    oc = openai_client(team)
    try:
        stream = await oc.chat.completions.create(model="shared", messages=HI, stream=True)  # type: ignore[arg-type]
        pieces = stream.__aiter__()
        first = await pieces.__anext__()
        assert first.choices
        killed = time.monotonic()
        member.proc.kill()
        with pytest.raises(openai.APIError) as failed:
            async for _ in pieces:
                pass
        error_s = time.monotonic() - killed
        assert error_s < 1.0, error_s
        print(f"agent killed mid-stream: the client's error event {error_s * 1000:.0f} ms after")
        assert "agent" in str(failed.value).lower() or failed.value.message, failed.value
        await team.wait_gone(member.provider_id)
        chat = await oc.chat.completions.create(model="shared", messages=HI)  # type: ignore[arg-type]
    finally:
        await oc.close()
    assert chat.choices[0].message.content == TEXT
    vllm = next(
        a for a in await team.agents() if a["provider_id"] == team.members["vllm"].provider_id
    )
    assert vllm["in_flight"] == 0


async def test_an_agent_killed_before_the_first_byte_falls_back(
    team: Team, spare: tuple[Member, float]
) -> None:
    member, _ = spare
    engine = member.engine
    vllm = team.members["vllm"].engine
    assert engine is not None and vllm is not None
    engine.replies.append(Reply(hang=True))  # the engine takes the job and says nothing
    served_before = len(vllm.requests_to("/v1/chat/completions"))
    oc = openai_client(team)
    try:
        asked = asyncio.ensure_future(
            oc.chat.completions.create(model="shared", messages=HI)  # type: ignore[arg-type]
        )
        await until(lambda: engine.requests_to("/v1/chat/completions"))  # the spare has it
        killed = time.monotonic()
        member.proc.kill()
        chat = await asyncio.wait_for(asked, 10)
        fallback_s = time.monotonic() - killed
    finally:
        await oc.close()
    assert chat.choices[0].message.content == TEXT
    assert len(vllm.requests_to("/v1/chat/completions")) == served_before + 1
    print(f"killed before the first byte: the fallback answered {fallback_s * 1000:.0f} ms after")


async def test_a_usepod_agent_joins_the_team(team: Team) -> None:
    """usepod-agent 0.3.3 (tests/fakes/usepod_agent.py, in this process) joins with the
    enrollment code and serves an OpenAI request."""
    async with FakeEngine("vllm", models=["usepod-model"]) as engine:
        agent = UsepodAgent(team.ws_url, engine.url, enrollment_code=CODE, heartbeat_s=HEARTBEAT_S)
        async with agent:
            await team.wait_joined(provider_id_for(agent.pubkey))
            assert agent.provider_id == provider_id_for(agent.pubkey)
            oc = openai_client(team)
            try:
                stream = await oc.chat.completions.create(
                    model="usepod-model", messages=HI, stream=True
                )  # type: ignore[arg-type]
                text = "".join(
                    [c.choices[0].delta.content or "" async for c in stream if c.choices]
                )
            finally:
                await oc.close()
            assert text == TEXT
            assert engine.requests_to("/v1/chat/completions")
        await team.wait_gone(provider_id_for(agent.pubkey))


# -- who may join ----------------------------------------------------------------------------


async def handshake(team: Team, pubkey: str, sign: Any) -> tuple[bytes, str, dict[str, Any]]:
    """One handshake: the nonce, the signature sent (`sign(nonce)`), and the hub's answer."""
    import base64

    async with aiohttp.ClientSession() as http, http.ws_connect(team.ws_url) as ws:
        challenge = json.loads((await ws.receive(timeout=5)).data)
        nonce = base64.b64decode(challenge["nonce"])
        signature = sign(nonce)
        await ws.send_str(
            json.dumps(
                {
                    "type": "auth_response",
                    "pubkey": pubkey,
                    "signature": signature,
                    "agent_version": "probe",
                }
            )
        )
        answer = json.loads((await ws.receive(timeout=5)).data)
    return nonce, signature, answer


def signer(key: Ed25519PrivateKey) -> Any:
    import base64

    return lambda nonce: base64.b64encode(key.sign(nonce)).decode()


async def test_auth_wrong_key_and_replayed_signature(
    team: Team, probe_key: Ed25519PrivateKey
) -> None:
    pubkey = pubkey_b64(probe_key)
    nonce, signature, answer = await handshake(team, pubkey, signer(probe_key))
    assert answer == {"type": "auth_ok", "provider_id": provider_id_for(pubkey)}
    # signed by another key
    _, _, answer = await handshake(team, pubkey, signer(Ed25519PrivateKey.generate()))
    assert answer["type"] == "auth_failed", answer
    # the first connection's signature, replayed: each connection has its own nonce
    replayed_nonce, _, answer = await handshake(team, pubkey, lambda _: signature)
    assert replayed_nonce != nonce
    assert answer["type"] == "auth_failed", answer
    # an unknown key, well signed
    stranger = Ed25519PrivateKey.generate()
    _, _, answer = await handshake(team, pubkey_b64(stranger), signer(stranger))
    assert answer == {"type": "auth_failed", "reason": "unknown key"}


async def test_a_revoked_agent_is_closed_and_refused(
    team: Team, spare: tuple[Member, float]
) -> None:
    member, _ = spare
    code, out = await run_modelport(
        "hub", "revoke", member.provider_id, "-c", str(team.config), home=team.home
    )
    assert code == 0, out
    gone_s = await team.wait_gone(member.provider_id, within=5)
    assert not any(
        m["id"] == "shared" and m["agent"]["provider_id"] == member.provider_id
        for m in await team.models()
    )
    # its reconnect (1 s backoff) is refused, and it says why
    await member.proc.wait_for(r"revoked key", within=10)
    assert member.proc.returncode is None  # it goes on trying, as usepod-agent does
    print(f"revoked: the agent's connection closed {gone_s:.2f} s after `hub revoke`")


# -- what the hub says about its agents ------------------------------------------------------


async def test_hub_agents_lists_the_team(team: Team, real: Member) -> None:
    oc = openai_client(team)
    try:
        for model in ("team-llama", "team-vllm", REAL_MODEL):
            await oc.chat.completions.create(model=model, messages=HI, max_tokens=4)  # type: ignore[arg-type]
    finally:
        await oc.close()
    three = {team.members[n].provider_id: n for n in ("llama", "vllm", "real")}

    async def listed() -> dict[str, dict[str, Any]]:
        return {a["provider_id"]: a for a in await team.agents() if a["provider_id"] in three}

    # every one has sent its first heartbeat (15 s after it joined) and has a job in the ledger
    deadline = time.monotonic() + HEARTBEAT_S + 10
    while True:
        agents = await listed()
        if len(agents) == 3 and all(a["heartbeat"] and a["jobs"] for a in agents.values()):
            break
        assert time.monotonic() < deadline, agents
        await asyncio.sleep(0.5)
    models = {"llama": {"team-llama"}, "vllm": {"team-vllm", "shared"}, "real": {REAL_MODEL}}
    for provider_id, agent in agents.items():
        name = three[provider_id]
        assert {m["model_id"] for m in agent["models"]} == models[name], agent
        assert 0 <= agent["heartbeat_age_s"] < HEARTBEAT_S + 5
        assert agent["in_flight"] == 0 and agent["ready"] is True
        assert agent["earnings_micro_usdc"] > 0 and agent["output_tokens"] > 0
        assert agent["formats"] == ["openai", "anthropic"]
    async with aiohttp.ClientSession() as http, http.get(team.url + "/v1/hub/agents") as answer:
        assert answer.status == 401  # behind the keys


async def test_usage_by_agent_and_the_settlement_export(team: Team) -> None:
    oc = openai_client(team)
    try:
        for model in ("team-llama", "team-vllm"):
            await oc.chat.completions.create(model=model, messages=HI)  # type: ignore[arg-type]
    finally:
        await oc.close()
    llama, vllm = team.members["llama"].provider_id, team.members["vllm"].provider_id

    async def usage() -> str:
        code, out = await run_modelport(
            "usage", "--by", "agent", "-c", str(team.config), home=team.home
        )
        assert code == 0, out
        return out

    out = await usage()
    for _ in range(40):  # the ledger's writer flushes every 0.5 s
        if llama in out and vllm in out:
            break
        await asyncio.sleep(0.25)
        out = await usage()
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith("prov_")}
    assert int(rows[llama][1]) >= 1 and int(rows[vllm][1]) >= 1, out
    code, csv = await run_modelport(
        "usage",
        "export",
        "--format",
        "csv",
        "--since",
        "1h",
        "-c",
        str(team.config),
        home=team.home,
    )
    assert code == 0, csv
    lines = csv.strip().splitlines()
    assert (
        lines[0]
        == "agent,model,jobs,errors,input_tokens,output_tokens,earnings_micro_usdc,earnings_usdc"
    )
    by_key = {tuple(line.split(",")[:2]): line.split(",") for line in lines[1:]}
    row = by_key[(llama, "team-llama")]
    # at 2_000_000 / 6_000_000 micro-USDC per million tokens: 2 per token in, 6 out
    assert int(row[2]) >= 1 and int(row[6]) == 2 * int(row[4]) + 6 * int(row[5]) > 0, row
    assert (vllm, "team-vllm") in by_key
