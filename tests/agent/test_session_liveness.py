"""A hub that stops answering (hung, or gone without a FIN) is noticed: the session Pings
a silent hub and dials again when no Pong comes (Timings.hub_silence_s), instead of waiting on a
dead socket until TCP gives up (many minutes: the agent's own heartbeats only fill the
kernel's buffer meanwhile, and its jobs hang with it)."""

from __future__ import annotations

from dataclasses import replace

from tests.agent.harness import FAST, running_agent
from tests.fakes.coordinator import FakeCoordinator


async def test_a_hub_that_stops_answering_is_left_and_dialled_again() -> None:
    timings = replace(FAST, hub_silence_s=0.6)
    async with FakeCoordinator() as hub, running_agent(hub.url, timings=timings) as agent:
        first = await hub.next_connection()
        await first.next_frame("capabilities")
        first.pause_reading()  # reads nothing more: no Pong to the agent's Pings
        # Pinged after 0.4 s of silence, left 0.2 s later without a Pong.
        second = await hub.next_connection(timeout=3)
        assert second is not first
        await second.next_frame("capabilities")
        assert agent.observed.ups[:3] == [True, False, True]
