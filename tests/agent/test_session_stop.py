"""A stop (SIGTERM or Ctrl-C in `modelport agent run`) lets the jobs in flight finish:
new jobs are refused with out_of_capacity (the hub tries another agent at once), running
ones end with job_done, and only past `stop_grace_s` is anything cancelled upstream."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from modelport.agent.jobs import JobRunner
from modelport.agent.session import AgentSession, Send
from modelport.wire.provider import JobDone, JobError
from tests.agent.harness import FAST, HI, KeyIdentity, capabilities, eventually, service_for
from tests.fakes import FakeEngine, Reply
from tests.fakes.coordinator import CoordinatorConn, FakeCoordinator, JobLost

MODEL = "m1"


@contextlib.asynccontextmanager
async def stopping_agent(
    engine: FakeEngine, grace_s: float
) -> AsyncIterator[tuple[JobRunner, CoordinatorConn, asyncio.Event, asyncio.Task[None]]]:
    """An agent over `engine` against a fake hub, with the `stop` its CLI would set."""
    service = await service_for(("vllm", engine.url))
    runners: list[JobRunner] = []

    def make_runner(send: Send) -> JobRunner:
        runners.append(JobRunner(service, max_concurrent=4, send=send))
        return runners[-1]

    stop = asyncio.Event()
    async with FakeCoordinator() as hub:
        session = AgentSession(
            hub.url,
            KeyIdentity(),
            capabilities=capabilities,
            jobs=make_runner,
            allow_insecure=True,
            timings=replace(FAST, stop_grace_s=grace_s),
        )
        task = asyncio.create_task(session.run(stop))
        try:
            yield runners[0], await hub.next_connection(), stop, task
        finally:
            stop.set()
            await asyncio.wait_for(task, 15)
            await service.router.aclose()


async def test_a_stop_lets_running_jobs_finish_and_refuses_new_ones(fake_engine) -> None:  # type: ignore[no-untyped-def]
    engine = await fake_engine("vllm", models=[MODEL])
    engine.default_reply = Reply(text="tick " * 40, chunk_chars=5, delay_s=0.02)  # < 1 s
    async with stopping_agent(engine, grace_s=10) as (runner, conn, stop, task):
        running = await conn.send_job(MODEL, HI)
        await eventually(lambda: len(conn.job_bytes(running)) > 0)
        stop.set()
        await eventually(lambda: runner.stopping)
        late = await conn.send_job(MODEL, HI)
        refused = await conn.job_end(late, timeout=2)
        assert isinstance(refused, JobError) and refused.error_code == "out_of_capacity"
        finished = await conn.job_end(running, timeout=5)
        assert isinstance(finished, JobDone), finished
        await asyncio.wait_for(task, 5)


async def test_past_the_grace_a_job_is_cancelled_upstream(fake_engine) -> None:  # type: ignore[no-untyped-def]
    engine = await fake_engine("vllm", models=[MODEL])
    engine.default_reply = Reply(text="tick " * 200, chunk_chars=5, delay_s=0.02)  # 4 s
    async with stopping_agent(engine, grace_s=0.2) as (runner, conn, stop, task):
        job = await conn.send_job(MODEL, HI)
        await eventually(lambda: len(conn.job_bytes(job)) > 0)
        stop.set()
        assert await engine.wait_disconnects(1, within=3) == 1
        await asyncio.wait_for(task, 5)
        assert runner.in_flight == 0
        with pytest.raises(JobLost):  # the link closed with no terminal frame for it
            conn.ended(job)
