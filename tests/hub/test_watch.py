"""The hub's heartbeat watch (one task for every agent) outlives a failing access check:
one `revoked()` that raises (an agents file on a disk gone bad, a bug) must not end the
watch, or no agent would ever be marked not ready or closed when revoked again."""

from __future__ import annotations

import logging

import pytest

from tests.gateway_harness import until
from tests.hub.agents import FakeAccess, ScriptedAgent, ws_url


class FlakyAccess(FakeAccess):
    """Its first revoked() call raises."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def revoked(self, pubkey_b64: str) -> bool:
        self.calls += 1
        if self.calls == 1:
            raise OSError("the agents file's disk is gone")
        return super().revoked(pubkey_b64)


async def test_the_watch_outlives_a_failing_access_check(
    hub_gateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="modelport.hub")
    access = FlakyAccess()
    gw, url = await hub_gateway(access=access, heartbeat_misses=2)
    async with ScriptedAgent(ws_url(url)) as agent:
        await agent.connect()
        assert await until(lambda: [u.ready for u in gw.router.upstreams] == [True])
        assert await until(lambda: access.calls >= 3)  # watched on after the failure
        assert "heartbeat watch" in caplog.text
        agent.stop_heartbeats()
        assert await until(lambda: not gw.router.upstreams[0].ready, within=3)
        access.revoked_keys.add(agent.pubkey)
        assert await until(lambda: agent.closed.is_set() or gw.hub.agents() == [], within=3)
