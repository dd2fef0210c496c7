"""What other tasks say to a supervisor's owner task, and the lease a request holds.

Asks carry a future the owner answers; news from the owner's helper tasks carries the
generation (which run of the child) it is about, so news of an older run is dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from modelport.backends.managed.states import Snapshot


class Lease:
    """One request's hold on a ready engine: while any is held it is busy, never idle."""

    def __init__(self, post: Callable[[Message], None], generation: int) -> None:
        self.generation = generation  # which run of the child it was granted on
        self._post = post
        self._held = True

    def release(self) -> None:
        """Give the engine back (idempotent, never blocks: safe in `finally` and in close)."""
        if self._held:
            self._held = False
            self._post(Release())


# -- messages: asks from other tasks (answered through a future) -----------------------------


@dataclass
class Acquire:
    future: asyncio.Future[Lease]


@dataclass
class Release:
    pass


@dataclass
class Stop:
    future: asyncio.Future[bool]
    only_if_idle: bool


@dataclass
class Report:
    future: asyncio.Future[Snapshot]


@dataclass
class EndOf:
    generation: int
    future: asyncio.Future[bool]  # True: that run crashed (it was not asked to stop)


@dataclass
class Close:
    future: asyncio.Future[bool]


# -- messages: news from the helper tasks ----------------------------------------------------


@dataclass
class Admitted:
    generation: int


@dataclass
class Unprepared:
    """What must be in place before a spawn (the engine's install) could not be made."""

    generation: int
    why: str


@dataclass
class Loading:
    generation: int
    note: str


@dataclass
class Healthy:
    generation: int


@dataclass
class HelperFailed:
    generation: int
    error: str


@dataclass
class Exited:
    generation: int
    code: int


@dataclass
class Stopped:
    generation: int


@dataclass
class Retry:
    generation: int


@dataclass
class IdleTick:
    pass


Message = (
    Acquire | Release | Stop | Report | EndOf | Close
    | Admitted | Unprepared | Loading | Healthy | HelperFailed | Exited | Stopped | Retry | IdleTick
)  # fmt: skip
