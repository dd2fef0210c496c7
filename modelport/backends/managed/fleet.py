"""Caps how many managed engines run at once; the least recently used idle one yields.

The Fleet owns one thing: which members hold a slot. It never stops a member itself; it
asks that member's supervisor, which refuses while the member is busy, so a slot is only
taken from an engine nobody uses or waits for. Admissions go one at a time (a lock), so
two engines starting together cannot both see a free slot.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from modelport.backends.managed.states import Snapshot

log = logging.getLogger("modelport.managed")

BUSY_POLL_S = 0.1


class Seat(Protocol):
    """A fleet member as the Fleet sees it: a supervisor it can ask."""

    id: str

    async def report(self) -> Snapshot: ...

    async def stop(self, *, only_if_idle: bool = False) -> bool: ...


class Fleet:
    def __init__(self, max_running: int = 1) -> None:
        self.max_running = max_running
        self.members: list[Seat] = []
        self._holders: set[Seat] = set()  # from admission until the member is stopped
        self._admitting = asyncio.Lock()

    @property
    def holders(self) -> frozenset[Seat]:
        return frozenset(self._holders)

    async def make_room(self, starting: Seat) -> None:
        """Give `starting` a slot, stopping idle holders (least recently used first) if full.

        Waits while every holder is busy. Called from the member's own start helper, never
        from its owner task, so the owners stay free to answer the asks made here.
        """
        async with self._admitting:
            while starting not in self._holders:
                others = [m for m in self._holders if m is not starting]
                if len(others) < self.max_running:
                    self._holders.add(starting)
                    return
                if not await self._stop_one_idle(others, starting):
                    await asyncio.sleep(BUSY_POLL_S)  # every holder is busy: wait for one

    async def _stop_one_idle(self, holders: list[Seat], starting: Seat) -> bool:
        reports = [(await member.report(), member) for member in holders]
        reports.sort(key=lambda pair: pair[0].last_used)
        for report, member in reports:
            if not report.idle:
                continue
            log.info("stopping %s to make room for %s", member.id, starting.id)
            if await member.stop(only_if_idle=True):  # its owner re-checks: it may be busy now
                return True
        return False

    def release(self, member: Seat) -> None:
        """Called by a member's owner task once its child is gone for good."""
        self._holders.discard(member)
