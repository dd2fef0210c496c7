"""/provider/connect: the handshake, who may join, the limits, one connection per agent,
readiness from heartbeats and capabilities applied at once (issue 13 points 1 and 2)."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import sys

import aiohttp
import pytest

from modelport.backends.base import Backend
from modelport.config import parse_config
from modelport.gateway.server import Gateway
from modelport.wire.provider import (
    AuthChallenge,
    AuthFailed,
    AuthResponse,
    Heartbeat,
    decode_hub_frame,
)
from tests.gateway_harness import make_config, until
from tests.hub.agents import (
    HEARTBEAT_S,
    FakeAccess,
    ScriptedAgent,
    new_key,
    provider_id_for,
    pubkey_of,
    send_frame,
    ws_url,
)


async def test_an_agent_authenticates_and_its_models_are_listed(hub_gateway) -> None:
    gw, url = await hub_gateway()
    async with ScriptedAgent(ws_url(url), models=("llama3", "qwen3")) as agent:
        provider_id = await agent.connect()
        assert provider_id == provider_id_for(agent.pubkey)
        assert await until(lambda: any(u.ready for u in gw.router.upstreams))
        async with aiohttp.ClientSession() as http:
            listing = await (await http.get(url + "/v1/models")).json()
        models = {m["id"]: m for m in listing["data"]}
        assert set(models) == {"llama3", "qwen3"}
        entry = models["llama3"]
        assert entry["context_window"] == 8192
        assert entry["backend"] == f"agent:{provider_id}"
        assert entry["owned_by"] == f"agent-{provider_id[5:13]}"
        assert entry["agent"]["provider_id"] == provider_id
        assert (entry["agent"]["input_per_1m"], entry["agent"]["output_per_1m"]) == (150, 600)
        (view,) = gw.hub.agents()
        assert view.provider_id == provider_id and view.pubkey == agent.pubkey
        assert view.agent_version == "scripted/0.3.3" and view.formats == ("openai",)
        upstream = gw.router.by_name(view.upstream)
        assert upstream is not None and not upstream.local
        assert isinstance(upstream.backend, Backend) and upstream.backend.kind == "agent"
        assert upstream.admission.max_concurrent == 4


async def test_a_wrong_signature_is_refused(hub_gateway) -> None:
    gw, url = await hub_gateway()
    async with ScriptedAgent(ws_url(url)) as agent:
        assert await agent.connect(sign=b"not the nonce") is None
        assert agent.failed == "bad signature"
        assert agent.close_code == 1008
    assert gw.hub.agents() == [] and gw.router.upstreams == ()


async def test_a_signature_from_another_connection_is_refused(hub_gateway) -> None:
    """A replay: the nonce of one connection signed, shown on another."""
    gw, url = await hub_gateway()
    key = new_key()
    async with aiohttp.ClientSession() as http:
        first = await http.ws_connect(ws_url(url))
        seen = decode_hub_frame((await first.receive(timeout=5)).data)
        assert isinstance(seen, AuthChallenge)
        signature = base64.b64encode(key.sign(seen.nonce)).decode()
        second = await http.ws_connect(ws_url(url))
        other = decode_hub_frame((await second.receive(timeout=5)).data)
        assert isinstance(other, AuthChallenge) and other.nonce != seen.nonce
        assert len(other.nonce) == 32
        await second.send_str(send_frame(AuthResponse(pubkey_of(key), signature)))
        refused = decode_hub_frame((await second.receive(timeout=5)).data)
        assert isinstance(refused, AuthFailed) and refused.reason == "bad signature"
        await first.close()
        await second.close()
    assert gw.hub.agents() == []


async def test_a_key_the_access_policy_does_not_know_is_refused(hub_gateway) -> None:
    known = new_key()
    access = FakeAccess({pubkey_of(known)})
    _gw, url = await hub_gateway(access=access)
    async with ScriptedAgent(ws_url(url)) as stranger:
        assert await stranger.connect() is None
        assert stranger.failed == "unknown key"
    async with ScriptedAgent(ws_url(url), key=known) as member:
        assert await member.connect() == provider_id_for(pubkey_of(known))
    assert [a[0] for a in access.asked] == [stranger.pubkey, member.pubkey]


async def test_an_unauthenticated_connection_is_closed_after_auth_timeout(hub_gateway) -> None:
    _gw, url = await hub_gateway(auth_timeout_s=0.3)
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(ws_url(url))
        assert isinstance(decode_hub_frame((await ws.receive(timeout=5)).data), AuthChallenge)
        started = asyncio.get_running_loop().time()
        msg = await ws.receive(timeout=5)
        waited = asyncio.get_running_loop().time() - started
        assert msg.type is aiohttp.WSMsgType.CLOSE and ws.close_code == 1008
        assert 0.2 < waited < 2.0


async def test_a_frame_over_max_frame_kb_closes_the_connection(hub_gateway) -> None:
    gw, url = await hub_gateway(max_frame_kb=1)
    async with ScriptedAgent(ws_url(url)) as agent:
        await agent.connect()
        assert await until(lambda: len(gw.router.upstreams) == 1)
        await agent.send_raw(json.dumps({"type": "heartbeat", "pad": "x" * 2048}))
        await asyncio.wait_for(agent.closed.wait(), 5)
        assert agent.close_code == 1009
        assert await until(lambda: gw.router.upstreams == () and gw.hub.agents() == [])


async def test_a_frame_flood_closes_the_connection_with_1008(hub_gateway, caplog) -> None:
    gw, url = await hub_gateway(max_frames_per_s=20)
    async with ScriptedAgent(ws_url(url), heartbeat_s=None) as agent:
        await agent.connect()
        for _ in range(60):
            if agent.closed.is_set():
                break
            await agent.send(Heartbeat())
        await asyncio.wait_for(agent.closed.wait(), 5)
        assert agent.close_code == 1008
        assert await until(lambda: gw.hub.agents() == [])
    assert "frames a second" in caplog.text


async def test_frames_within_the_rate_are_fine(hub_gateway) -> None:
    gw, url = await hub_gateway(max_frames_per_s=20)
    async with ScriptedAgent(ws_url(url), heartbeat_s=None) as agent:
        await agent.connect()
        for _ in range(10):
            await agent.send(Heartbeat())
            await asyncio.sleep(0.1)
        assert not agent.closed.is_set() and len(gw.hub.agents()) == 1


async def test_a_second_connection_of_one_agent_replaces_the_first(hub_gateway) -> None:
    gw, url = await hub_gateway()
    key = new_key()
    async with (
        ScriptedAgent(ws_url(url), key=key) as old,
        ScriptedAgent(ws_url(url), key=key) as new,
    ):
        await old.connect()
        assert await until(lambda: len(gw.router.upstreams) == 1)
        await new.connect()
        await asyncio.wait_for(old.closed.wait(), 5)
        assert old.close_code == 4000
        assert await until(lambda: [u.ready for u in gw.router.upstreams] == [True])
        (view,) = gw.hub.agents()
        assert view.provider_id == provider_id_for(pubkey_of(key))
        assert gw.router.upstreams[0].name == view.upstream  # no "-2": the old one is gone


async def test_missed_heartbeats_make_an_agent_not_ready_until_it_beats_again(hub_gateway) -> None:
    gw, url = await hub_gateway(heartbeat_misses=2)
    async with ScriptedAgent(ws_url(url)) as agent:
        await agent.connect()
        assert await until(lambda: [u.ready for u in gw.router.upstreams] == [True])
        await asyncio.sleep(HEARTBEAT_S * 3)
        assert gw.router.upstreams[0].ready  # heartbeats keep it ready
        agent.stop_heartbeats()
        started = asyncio.get_running_loop().time()
        assert await until(lambda: not gw.router.upstreams[0].ready, within=3)
        silent = asyncio.get_running_loop().time() - started
        assert silent >= HEARTBEAT_S * 1.5  # not before two intervals are missed
        assert gw.router.upstreams[0].health.last_error == "agent missed its heartbeats"
        assert gw.hub.agents()[0].ready is False
        await agent.send(Heartbeat())
        assert await until(lambda: gw.router.upstreams[0].ready)


async def test_new_capabilities_reach_v1_models_at_once(hub_gateway) -> None:
    gw, url = await hub_gateway()
    gw.router.refresh_s = 3600  # nothing but the frame itself may change the listing
    async with ScriptedAgent(ws_url(url), models=("a",)) as agent, aiohttp.ClientSession() as http:
        await agent.connect()
        assert await until(lambda: len(gw.router.models()) == 1)
        agent.models = ("a", "b")
        agent.max_concurrent = 9
        await agent.send_capabilities()
        assert await until(lambda: len(gw.router.models()) == 2, within=1)
        listing = await (await http.get(url + "/v1/models")).json()
        assert {m["id"] for m in listing["data"]} == {"a", "b"}
        assert gw.router.upstreams[0].admission.max_concurrent == 9


async def test_the_upstream_goes_with_the_connection(hub_gateway) -> None:
    gw, url = await hub_gateway()
    agent = ScriptedAgent(ws_url(url))
    await agent.connect()
    assert await until(lambda: len(gw.router.upstreams) == 1)
    await agent.kill()
    assert await until(lambda: gw.router.upstreams == () and gw.hub.agents() == [])


async def test_provider_connect_needs_no_api_key_but_the_api_still_does(tmp_path) -> None:
    keyed = make_config(
        '[server]\napi_keys_env = ["HUB_TEST_KEY"]\n[hub]\nenabled = true\n',
        server={"embedded": False},
    )
    gw = Gateway(
        keyed, env={"HUB_TEST_KEY": "sk-test"}, hub_access=FakeAccess(), hub_heartbeat_s=HEARTBEAT_S
    )
    url = await gw.start()
    try:
        async with ScriptedAgent(ws_url(url)) as agent:
            assert await agent.connect() is not None
        async with aiohttp.ClientSession() as http:
            assert (await http.get(url + "/v1/models")).status == 401
    finally:
        await gw.stop(grace_s=0)


async def test_provider_connect_is_not_served_when_the_hub_is_off(tmp_path) -> None:
    gw = Gateway(make_config(server={"embedded": False}), env={})
    url = await gw.start()
    try:
        assert gw.hub is None
        async with aiohttp.ClientSession() as http:
            answer = await http.get(url + "/provider/connect")
            assert answer.status == 404
    finally:
        await gw.stop(grace_s=0)


async def test_serve_hub_serves_provider_connect(tmp_path) -> None:
    """`modelport serve --hub`: the hub is on though the file does not say so. Runs once
    H5's access policy (modelport.hub.access) is merged: the gateway builds it."""
    pytest.importorskip("modelport.hub.access")
    assert parse_config("").hub.enabled is False
    config = tmp_path / "modelport.toml"
    config.write_text(
        f'[server]\nembedded = false\nledger = "off"\n[hub]\nagents_file = "{tmp_path}/agents"\n'
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "modelport.cli",
        "serve",
        "--config",
        str(config),
        "--port",
        str(port),
        "--no-discovery",
        "--hub",
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stderr is not None
        line = await asyncio.wait_for(process.stderr.readline(), 30)
        while b"serving on" not in line:
            line = await asyncio.wait_for(process.stderr.readline(), 30)
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(f"ws://127.0.0.1:{port}/provider/connect")
            challenge = decode_hub_frame((await ws.receive(timeout=5)).data)
            assert isinstance(challenge, AuthChallenge)
            await ws.close()
    finally:
        process.terminate()
        await process.wait()
