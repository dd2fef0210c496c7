"""What the session and job tests share: an identity made with `cryptography`, a service over
protocol fakes, and an agent session running against the fake coordinator."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from modelport.agent.jobs import JobRunner
from modelport.agent.session import AgentSession, Send, Timings
from modelport.backends import connect
from modelport.records import RequestRecord
from modelport.router import Limits, Router
from modelport.service import Service
from modelport.wire.provider import Capabilities, CapabilityLimits, CapabilityModel, Heartbeat
from tests.fakes import FakeEngine
from tests.fakes.coordinator import CoordinatorConn

# Short clocks: a heartbeat every 0.2 s, backoff 0.05 s doubling to 0.4 s.
FAST = Timings(
    heartbeat_interval_s=0.2, backoff_start_s=0.05, backoff_max_s=0.4, handshake_timeout_s=5
)
HI = {"messages": [{"role": "user", "content": "hi"}]}
MODEL = "m1"  # the model engine_and_agent's engine fake serves (conftest.py)
ANTHROPIC_HI = {"max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}


class KeyIdentity:
    """An identity as modelport.agent.identity.Identity behaves, in memory."""

    def __init__(self, seed: bytes = bytes(range(32)), provider_id: str | None = None) -> None:
        self.key = Ed25519PrivateKey.from_private_bytes(seed)
        raw = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.public_key_b64 = base64.b64encode(raw).decode()
        self.provider_id = provider_id
        self.saved: list[str] = []  # every provider_id persisted

    def sign_b64(self, message: bytes) -> str:
        return base64.b64encode(self.key.sign(message)).decode()

    def set_provider_id(self, provider_id: str) -> None:
        self.provider_id = provider_id
        self.saved.append(provider_id)


@dataclass
class Observed:
    """A JobObserver and SessionObserver that writes down what it is told."""

    started: list[str] = field(default_factory=list)
    finished: list[tuple[str, str, str | None]] = field(default_factory=list)
    ups: list[bool] = field(default_factory=list)
    reconnects: int = 0

    def job_started(self, job_id: str, model: str) -> None:
        self.started.append(job_id)

    def job_finished(self, job_id: str, *, outcome: str, error_code: str | None) -> None:
        self.finished.append((job_id, outcome, error_code))

    def connected(self, up: bool) -> None:
        self.ups.append(up)

    def reconnected(self) -> None:
        self.reconnects += 1

    def outcome(self, job_id: str) -> tuple[str, str | None] | None:
        return next(((o, c) for j, o, c in self.finished if j == job_id), None)


def capabilities(models: tuple[str, ...] = ()) -> Capabilities:
    rows = [CapabilityModel(m, 1, 2, 8, "llamacpp") for m in models]
    return Capabilities(models=rows, limits=CapabilityLimits(8))


async def service_for(*backends: tuple[str, str], **limits: Any) -> Service:
    """A service over `(kind, url)` backends, their models read once (no refresh loop)."""
    router = Router()
    for kind, url in backends:
        router.add(connect(f"{kind}:{url}", api_key="sk-test"), Limits(**limits))
    await router.refresh()
    return Service(router, request_timeout_s=30)


@dataclass
class Agent:
    session: AgentSession
    runner: JobRunner
    records: list[RequestRecord]
    observed: Observed
    task: asyncio.Task[None]


@contextlib.asynccontextmanager
async def running_agent(
    url: str,
    service: Service | None = None,
    *,
    identity: KeyIdentity | None = None,
    max_concurrent: int = 4,
    timings: Timings = FAST,
    caps: Callable[[], Capabilities] = capabilities,
    heartbeat: Callable[[int], Heartbeat] | None = None,
    enrollment_code: str | None = None,
) -> AsyncIterator[Agent]:
    """An AgentSession (and its JobRunner) running against `url` until the block ends."""
    service = service or Service(Router())
    records: list[RequestRecord] = []
    service.observe = records.append
    observed = Observed()
    runners: list[JobRunner] = []

    def make_runner(send: Send) -> JobRunner:
        runner = JobRunner(service, max_concurrent=max_concurrent, send=send, observer=observed)
        runners.append(runner)
        return runner

    session = AgentSession(
        url,
        identity or KeyIdentity(),
        capabilities=caps,
        jobs=make_runner,
        heartbeat=heartbeat,
        enrollment_code=enrollment_code,
        allow_insecure=True,
        timings=timings,
        observer=observed,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(session.run(stop))
    try:
        yield Agent(session, runners[0], records, observed, task)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await service.router.aclose()


async def eventually(check: Callable[[], bool], within: float = 5.0) -> None:
    """Wait until `check()` holds, or fail after `within` seconds. Polled: what it checks
    (a fake's lists, a counter) has no event to wait on."""
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


# engine_and_agent's factory (conftest.py): kind (and options) -> (engine, agent, the hub's
# side of the agent's connection)
Running = tuple[FakeEngine, Agent, CoordinatorConn]
Started = Callable[..., contextlib.AbstractAsyncContextManager[Running]]
