"""The managed engine's state machine, against a stand-in llama-server child process.

The child is tests/fakes/llama_server.py (a FakeEngine on the port the backend picked),
run through a shell wrapper as the spec's binary, so spawn, /health wait, crash, restart,
idle unload and the fleet cap all run for real, with no model and no build.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from modelport.backends.managed import Fleet, ManagedBackend, ManagedSpec, State
from modelport.errors import BackendError, Overloaded, Unsupported
from modelport.types import ChatRequest, ChatResponse, Message, RelayFormat, TextDelta

ROOT = Path(__file__).resolve().parents[2]
TEXT = "one two three four five six seven eight nine ten"

MakeBackend = Callable[..., ManagedBackend]


@pytest.fixture
def binary(tmp_path: Path) -> Path:
    wrapper = tmp_path / "llama-server"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m tests.fakes.llama_server "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


@pytest.fixture
async def make(binary: Path, tmp_path: Path) -> AsyncIterator[MakeBackend]:
    """`make("a", load_s=0.3, delay_s=0, term_s=0, idle_unload_s=0, fleet=None)`."""
    made: list[ManagedBackend] = []

    def build(alias: str = "fake", *, fleet: Fleet | None = None, **knobs: float) -> ManagedBackend:
        args = []
        for knob in ("load_s", "delay_s", "term_s"):
            if knob in knobs:
                args += [f"--fake-{knob.replace('_', '-')}", str(knobs[knob])]
        spec = ManagedSpec(
            binary,
            tmp_path / f"{alias}.gguf",
            alias,
            idle_unload_s=knobs.get("idle_unload_s", 0.0),
            args=(*args, "--fake-log", str(tmp_path / "children.log")),
            env={"PYTHONPATH": str(ROOT)},
        )
        backend = ManagedBackend(spec, fleet=fleet)
        made.append(backend)
        return backend

    yield build
    for backend in made:
        await backend.aclose()


def children_log(tmp_path: Path) -> list[tuple[str, int]]:
    path = tmp_path / "children.log"
    if not path.exists():
        return []
    return [(w, int(p)) for w, p in (line.split() for line in path.read_text().splitlines())]


def ask(alias: str = "fake") -> ChatRequest:
    return ChatRequest(model=alias, messages=(Message.user("count"),), max_tokens=16)


def said(reply: ChatResponse) -> str:
    return reply.message.text


async def text_of(backend: ManagedBackend, alias: str = "fake") -> str:
    pieces = [e.text async for e in backend.stream(ask(alias)) if isinstance(e, TextDelta)]
    return "".join(pieces)


async def until(check: Callable[[], bool], within: float = 15.0) -> None:
    for _ in range(int(within / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached in time")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_states_seen_in_order_through_start_crash_restart_and_stop(make: MakeBackend) -> None:
    backend = make()
    assert backend.state is State.STOPPED
    await backend.start()
    assert backend.state is State.READY and backend.pid is not None
    first = backend.pid
    os.kill(first, signal.SIGKILL)
    await until(lambda: backend.state is State.READY and backend.pid not in (None, first))
    assert backend.restarts == 1
    await backend.unload()
    assert backend.state is State.STOPPED and backend.pid is None and not alive(first)
    assert list(backend.supervisor.history) == [
        State.STOPPED, State.STARTING, State.READY,  # asked to start
        State.FAILED, State.STARTING, State.READY,  # died, restarted after the backoff
        State.STOPPING, State.STOPPED,  # asked to stop
    ]  # fmt: skip


async def test_the_child_runs_in_its_own_process_group(make: MakeBackend) -> None:
    backend = make()
    await backend.start()
    assert backend.pid is not None and os.getpgid(backend.pid) == backend.pid


async def test_concurrent_requests_during_a_start_start_the_child_once(
    make: MakeBackend, tmp_path: Path
) -> None:
    backend = make(load_s=0.5)
    replies = await asyncio.gather(*(backend.chat(ask()) for _ in range(6)))
    assert all(said(reply) == TEXT for reply in replies)
    assert [what for what, _ in children_log(tmp_path)] == ["start"]
    assert (await backend.supervisor.report()).in_flight == 0


async def test_health_is_not_ready_while_loading_then_ready(make: MakeBackend) -> None:
    backend = make(load_s=0.5)
    assert (await backend.health()).ready  # stopped: the next request starts it
    starting = asyncio.create_task(backend.start())
    await until(lambda: backend.state is State.STARTING)
    assert not (await backend.health()).ready
    await starting
    assert (await backend.health()).ready


def assert_never_two_at_once(tmp_path: Path) -> None:
    """With a cap of 1, each child has stopped before the next one starts."""
    log = children_log(tmp_path)
    running: set[int] = set()
    for what, pid in log:
        if what == "start":
            assert not running, f"{pid} started while {running} still ran: {log}"
            running.add(pid)
        else:
            running.discard(pid)


async def test_make_room_racing_a_request_on_the_same_engine(
    make: MakeBackend, tmp_path: Path
) -> None:
    fleet = Fleet(max_running=1)
    one = make("one", fleet=fleet, term_s=0.3)  # a slow shutdown widens the race
    two = make("two", fleet=fleet, term_s=0.3)
    await one.start()
    # `two` needs room: the fleet stops `one`; meanwhile a request for `one` comes in.
    for_two = asyncio.create_task(two.chat(ask("two")))
    await until(lambda: one.state is State.STOPPING)
    for_one = asyncio.create_task(one.chat(ask("one")))
    assert said(await for_two) == TEXT
    assert said(await for_one) == TEXT
    assert_never_two_at_once(tmp_path)
    for backend in (one, two):  # never serving while stopped: state and child agree
        if backend.state is State.READY:
            assert backend.pid is not None and alive(backend.pid)
        else:
            assert backend.state is State.STOPPED and backend.pid is None
    assert one.state is State.READY and two.state is State.STOPPED


async def test_fleet_starting_two_engines_at_once_keeps_the_cap(
    make: MakeBackend, tmp_path: Path
) -> None:
    fleet = Fleet(max_running=1)
    engines = [make(name, fleet=fleet, term_s=0.2) for name in ("one", "two", "three")]
    replies = await asyncio.gather(*(e.chat(ask(e.spec.alias)) for e in engines))
    assert all(said(reply) == TEXT for reply in replies)
    assert_never_two_at_once(tmp_path)
    assert sum(e.running for e in engines) == 1


async def test_fleet_never_stops_a_busy_engine(make: MakeBackend) -> None:
    fleet = Fleet(max_running=1)
    one = make("one", fleet=fleet, delay_s=0.1)
    two = make("two", fleet=fleet)
    await one.start()
    streaming = asyncio.create_task(text_of(one, "one"))
    await until(lambda: one.in_flight == 1)
    for_two = asyncio.create_task(two.chat(ask("two")))
    await asyncio.sleep(0.3)
    assert two.state is State.STARTING and one.state is State.READY  # two waits for a slot
    assert await streaming == TEXT
    assert said(await for_two) == TEXT
    assert one.state is State.STOPPED


async def test_idle_unload_during_an_in_flight_request_never_kills_it(make: MakeBackend) -> None:
    # Idle time shorter than the load and than the request: neither counts as idle.
    backend = make(load_s=0.5, delay_s=0.1, idle_unload_s=0.2)
    assert await text_of(backend) == TEXT  # about 1.3 s of streaming
    assert State.STOPPING not in backend.supervisor.history
    await until(lambda: backend.state is State.STOPPED)  # idle after it: unloaded
    assert said(await backend.chat(ask())) == TEXT  # and the next request starts it again
    assert backend.supervisor.history.count(State.READY) == 2


async def test_idle_time_counts_from_ready_not_from_the_ask(make: MakeBackend) -> None:
    # Changed: the old idle timer counted from the ask, so an engine that took longer to
    # load than idle_unload_s was unloaded at the first idle check after it became ready.
    backend = make(load_s=2.0, idle_unload_s=2.0)
    await backend.start()
    await asyncio.sleep(1.5)
    assert backend.running, "unloaded before it was idle for idle_unload_s"
    await until(lambda: not backend.running)


async def test_a_child_dying_mid_stream_gives_a_typed_error_and_is_restarted(
    make: MakeBackend,
) -> None:
    backend = make(delay_s=0.1)
    await backend.start()
    pid = backend.pid
    assert pid is not None
    seen = 0
    with pytest.raises(BackendError):
        async for event in backend.stream(ask()):
            if isinstance(event, TextDelta):
                seen += 1
                if seen == 2:
                    os.kill(pid, signal.SIGKILL)
    assert (await backend.supervisor.report()).in_flight == 0
    # No request needed: the supervisor restarts it by itself.
    await until(lambda: backend.state is State.READY and backend.pid not in (None, pid))
    assert backend.restarts == 1
    assert said(await backend.chat(ask())) == TEXT


async def test_a_crash_before_any_answer_is_retried_on_the_restarted_engine(
    make: MakeBackend,
) -> None:
    backend = make(delay_s=0.3)  # the whole answer comes after ~4 s: time to kill it
    await backend.start()
    pid = backend.pid
    assert pid is not None
    asking = asyncio.create_task(backend.chat(ask()))
    await until(lambda: backend.in_flight == 1)
    await asyncio.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
    assert said(await asking) == TEXT
    assert backend.restarts == 1 and backend.pid != pid


async def test_stopping_while_loading_tells_the_waiters_and_leaves_no_health_poll(
    make: MakeBackend, tmp_path: Path
) -> None:
    backend = make(load_s=30)
    waiting = asyncio.create_task(backend.chat(ask()))
    await until(lambda: backend.pid is not None)
    pid = backend.pid
    assert pid is not None
    await backend.unload()
    with pytest.raises(Overloaded, match="stopped"):
        await waiting
    assert backend.state is State.STOPPED and not alive(pid)
    polls = [t for t in asyncio.all_tasks() if "_poll_health" in repr(t.get_coro())]
    assert not polls


async def test_a_missing_binary_fails_the_request_with_the_reason(tmp_path: Path) -> None:
    backend = ManagedBackend(ManagedSpec(tmp_path / "nope", tmp_path / "m.gguf", "m"))
    try:
        with pytest.raises(Overloaded, match="no llama-server at"):
            await backend.start()
        assert backend.state is State.FAILED
        assert (await backend.health()).ready  # the next request tries again
    finally:
        await backend.aclose()


class FleetThatFailsOnce(Fleet):
    """A fleet whose first admission breaks (a bug in a helper, not a refusal)."""

    def __init__(self) -> None:
        super().__init__(max_running=1)
        self.failed = False

    async def make_room(self, starting: Any) -> None:
        if not self.failed:
            self.failed = True
            raise RuntimeError("admission broke")
        await super().make_room(starting)


async def test_a_helper_that_breaks_while_starting_does_not_leave_it_starting(
    make: MakeBackend,
) -> None:
    backend = make(fleet=FleetThatFailsOnce())
    with pytest.raises(Overloaded, match="admission broke"):
        await backend.chat(ask())
    await until(lambda: backend.state is State.STOPPED)
    assert said(await backend.chat(ask())) == TEXT  # and the next request starts it


async def test_a_refused_completion_never_wakes_the_engine(
    make: MakeBackend, tmp_path: Path
) -> None:
    """`suffix` is a field llama-server drops: the managed engine refuses it before starting
    its child (autocomplete sends one per keystroke; an idle engine must stay down), and a
    plain completion then starts it and is relayed."""
    backend = make()
    fim = b'{"model": "fake", "prompt": "def f():", "suffix": "\\n    return x"}'
    with pytest.raises(Unsupported, match="suffix"):
        await backend.relay(RelayFormat.COMPLETIONS, fim)
    assert backend.state is State.STOPPED and children_log(tmp_path) == []

    relay = await backend.relay(RelayFormat.COMPLETIONS, b'{"model": "fake", "prompt": "x"}')
    body = b"".join([chunk async for chunk in relay])
    assert b'"text_completion"' in body and relay.usage is not None
    assert [what for what, _ in children_log(tmp_path)] == ["start"]
