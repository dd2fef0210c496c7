"""A managed engine while it starts (issue 11, point 10), against the stand-in llama-server.

The supervisor owns the child's state; what must be in place before its first spawn (the
embedded engine's install) is a `Prerequisite` another task owns, whose progress becomes
the start's note. A request waits up to `start_wait_s`, then gets `Starting` saying what
is happening; the child is tests/fakes/llama_server.py, as in test_managed_states.py.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from modelport.backends.managed import ManagedBackend, ManagedSpec, State
from modelport.errors import Overloaded, Starting, Unreachable
from modelport.types import ChatRequest, Message

ROOT = Path(__file__).resolve().parents[2]


class Install:
    """A prerequisite that reports the build at 40% and is done when `finish` is set."""

    def __init__(self, fail: bool = False) -> None:
        self.finish = asyncio.Event()
        self.fail = fail
        self.waits = 0

    async def wait(self, note: Callable[[str], None]) -> None:
        self.waits += 1
        note("building llama-server, 40%")
        if self.fail:
            raise Unreachable("the embedded engine could not be installed: cmake failed")
        await self.finish.wait()


@pytest.fixture
async def made(tmp_path: Path) -> AsyncIterator[list[ManagedBackend]]:
    backends: list[ManagedBackend] = []
    yield backends
    for backend in backends:
        await backend.aclose()


def backend(
    tmp_path: Path, made: list[ManagedBackend], install: Install, wait_s: float
) -> ManagedBackend:
    wrapper = tmp_path / "llama-server"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m tests.fakes.llama_server "$@"\n')
    wrapper.chmod(0o755)
    spec = ManagedSpec(wrapper, tmp_path / "m.gguf", "m", env={"PYTHONPATH": str(ROOT)})
    managed = ManagedBackend(spec, start_wait_s=wait_s, prerequisite=install)
    made.append(managed)
    return managed


def ask() -> ChatRequest:
    return ChatRequest(model="m", messages=(Message.user("count"),), max_tokens=16)


async def test_a_request_past_the_bound_is_told_what_the_start_is_doing(
    tmp_path: Path, made: list[ManagedBackend]
) -> None:
    install = Install()
    managed = backend(tmp_path, made, install, wait_s=0.2)
    with pytest.raises(Starting, match="model 'm' is starting: building llama-server, 40%"):
        await managed.chat(ask())
    health = await managed.health()
    assert (health.ready, health.starting) == (False, True)
    assert health.last_error == "building llama-server, 40%"
    assert [m.id for m in await managed.list_models()] == ["m"]  # known before it runs
    install.finish.set()
    await managed.start(patient=True)
    assert (await managed.chat(ask())).message.text
    assert install.waits == 1  # one start, one wait: the parked requests shared it


async def test_a_failed_prerequisite_fails_the_start_and_the_next_request_tries_again(
    tmp_path: Path, made: list[ManagedBackend]
) -> None:
    install = Install(fail=True)
    managed = backend(tmp_path, made, install, wait_s=5)
    with pytest.raises(Overloaded, match="could not be installed: cmake failed") as caught:
        await managed.chat(ask())
    assert not isinstance(caught.value, Starting)  # a fault, not a start in progress
    assert managed.state is State.FAILED and managed.pid is None
    assert (await managed.health()).ready  # not running: the next request starts it
    with pytest.raises(Overloaded, match="cmake failed"):
        await managed.chat(ask())
    assert install.waits == 2
