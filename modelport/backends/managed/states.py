"""The states of one managed engine and the only transitions between them (docs/managed.md)."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class State(enum.Enum):
    STOPPED = "stopped"  # no child; the next request starts one
    STARTING = "starting"  # waiting for a fleet slot, spawning, or loading until /health is 200
    READY = "ready"  # the child answers; requests get leases
    STOPPING = "stopping"  # asked to stop: SIGTERM sent, waiting for the child to exit
    FAILED = "failed"  # the child died or could not start; a restart may be scheduled


ALLOWED: frozenset[tuple[State, State]] = frozenset(
    {
        (State.STOPPED, State.STARTING),
        (State.STARTING, State.READY),
        (State.STARTING, State.FAILED),
        (State.STARTING, State.STOPPING),
        (State.READY, State.FAILED),
        (State.READY, State.STOPPING),
        (State.FAILED, State.STARTING),
        (State.FAILED, State.STOPPING),
        (State.STOPPING, State.STOPPED),
    }
)


@dataclass(frozen=True)
class Snapshot:
    """What the owner task reports: a copy, so reading it changes nothing."""

    state: State
    pid: int | None
    in_flight: int
    waiting: int  # requests parked until the engine is ready
    last_used: float  # time.monotonic() of the last lease taken or given back
    last_error: str | None
    restarts: int
    retrying: bool  # failed, with a restart scheduled

    @property
    def idle(self) -> bool:
        """Nobody uses it or waits for it, and it is not loading: it may be stopped."""
        return self.in_flight == 0 and self.waiting == 0 and self.state is not State.STARTING
