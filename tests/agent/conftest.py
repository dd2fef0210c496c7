"""Fixtures of the agent's job tests: a fake coordinator (the hub's side of usepod's
protocol) and `engine_and_agent`, an engine fake with a real agent over it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.agent.harness import MODEL, Running, running_agent, service_for
from tests.fakes import FakeEngine
from tests.fakes.coordinator import FakeCoordinator


@pytest.fixture
async def hub() -> AsyncIterator[FakeCoordinator]:
    async with FakeCoordinator() as coordinator:
        yield coordinator


@pytest.fixture
def engine_and_agent(fake_engine, hub: FakeCoordinator):  # type: ignore[no-untyped-def]
    """`async with engine_and_agent("vllm") as (engine, agent, conn):` an engine fake of that
    kind serving MODEL, an agent over it, and the hub's side of the agent's connection."""

    @contextlib.asynccontextmanager
    async def start(
        kind: str, *, max_concurrent: int = 4, engine: FakeEngine | None = None, **limits: Any
    ) -> AsyncIterator[Running]:
        fake = engine or await fake_engine(kind, models=[MODEL])
        if engine is not None:
            await engine.start()
        service = await service_for((kind, fake.url), **limits)
        async with running_agent(hub.url, service, max_concurrent=max_concurrent) as agent:
            conn = await hub.next_connection()
            yield fake, agent, conn
        if engine is not None:
            await engine.stop()

    return start
