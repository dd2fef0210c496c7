"""The router owns its upstreams: added and removed through its methods, described once a tick."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from modelport.backends import connect
from modelport.backends.mock import MockBackend
from modelport.backends.ollama import OllamaBackend
from modelport.errors import DeadlineSpent, QueueFull, RateLimited, TimedOut, Unreachable
from modelport.router import Breaker, Limits, RateLimits, Router, is_upstream_fault
from tests.fakes import FakeEngine

FakeFactory = Callable[..., Awaitable[FakeEngine]]
LIMITS = Limits(max_concurrent=2, max_queue=4, queue_timeout_s=1.0)


async def test_ollama_is_described_once_per_refresh(fake_engine: FakeFactory) -> None:
    fake = await fake_engine("ollama", models=["llama3.2", "qwen3:4b"])
    router = Router()
    router.add(OllamaBackend(fake.url), LIMITS)
    try:
        await router.refresh()
        assert len(fake.requests_to("/api/tags")) == 1
        assert len(fake.requests_to("/")) == 1  # health
        await router.refresh()
        assert len(fake.requests_to("/api/tags")) == 2
    finally:
        await router.aclose()
    assert sorted(router.upstreams[0].models) == ["llama3.2:latest", "qwen3:4b"]


async def test_refresh_soon_is_done_by_the_loop(fake_engine: FakeFactory) -> None:
    fake = await fake_engine("ollama", models=["llama3.2"])
    router = Router(refresh_s=3600)
    upstream = router.add(OllamaBackend(fake.url), LIMITS)
    try:
        await router.start()
        assert len(fake.requests_to("/api/tags")) == 1
        await router.refresh_soon()  # without it the next look would be an hour away
        assert len(fake.requests_to("/api/tags")) == 2
        assert upstream.ready
    finally:
        await router.aclose()


async def test_discover_hook_adds_through_the_router_and_is_described_at_once(
    fake_engine: FakeFactory,
) -> None:
    fake = await fake_engine("ollama", models=["late"])
    calls: list[int] = []

    async def discover(router: Router) -> None:
        calls.append(len(router.upstreams))
        if router.by_url(fake.url) is None:
            router.add(OllamaBackend(fake.url), LIMITS, discovered=True)

    router = Router(discover=discover)
    try:
        await router.refresh()
        await router.refresh()
    finally:
        await router.aclose()
    assert calls == [0, 1]
    (upstream,) = router.upstreams
    assert (upstream.name, upstream.discovered, upstream.ready) == ("ollama", True, True)
    assert [r.upstream for r in router.resolve("late:latest")] == [upstream]
    assert len(fake.requests_to("/api/tags")) == 2  # once per refresh


async def test_add_names_and_limits_and_remove() -> None:
    router = Router()
    first = router.add(MockBackend(), LIMITS)
    second = router.add(MockBackend(), LIMITS, discovered=True)
    third = router.add(MockBackend(), LIMITS, name="mine", priority=3, local=False)
    assert [u.name for u in router.upstreams] == ["mock", "mock-2", "mine"]
    assert (first.admission.max_concurrent, first.admission.max_queue) == (2, 4)
    assert first.admission.queue_timeout_s == 1.0
    assert (third.priority, third.local, second.discovered) == (3, False, True)
    assert first.admission is not second.admission  # limits are per upstream

    assert await router.remove("mock-2") is second
    assert await router.remove("mock-2") is None
    assert [u.name for u in router.upstreams] == ["mock", "mine"]
    assert router.add(MockBackend(), LIMITS).name == "mock-2"  # the name is free again
    await router.aclose()


async def test_upstreams_is_a_snapshot() -> None:
    router = Router()
    router.add(MockBackend(), LIMITS)
    snapshot = router.upstreams
    router.add(MockBackend(), LIMITS)
    assert len(snapshot) == 1
    assert len(router.upstreams) == 2
    await router.aclose()


async def test_a_failing_discovery_does_not_stop_the_refresh(fake_engine: FakeFactory) -> None:
    """Changed: before, an exception from discovery skipped every upstream's refresh (and
    failed `start`); now it is logged and the engines already known are still read."""
    fake = await fake_engine("ollama", models=["llama3.2"])

    async def broken(router: Router) -> None:
        raise RuntimeError("no network today")

    router = Router(discover=broken)
    upstream = router.add(OllamaBackend(fake.url), LIMITS)
    try:
        await router.start()
        assert upstream.ready
        assert list(upstream.models) == ["llama3.2:latest"]
    finally:
        await router.aclose()


# -- breaker, rate limits and what counts as a backend's fault (issue 11.1, 11.2) -----------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_neutral_outcome_gives_a_half_open_trial_back() -> None:
    clock = Clock()
    breaker = Breaker(threshold=1, cooldown_s=10, clock=clock)
    breaker.failure()
    clock.now += 10
    assert breaker.allow() and not breaker.allow()  # the one trial is out
    breaker.neutral()  # it ended with a 429, a 400, the client leaving...
    assert breaker.state == "half-open" and breaker.failures == 1
    assert breaker.allow()  # ...so the next request may be the trial


def test_rate_limits_hold_one_model_for_its_wait() -> None:
    clock = Clock()
    limits = RateLimits(clock=clock)
    limits.hold("m", 30)
    limits.hold("m", 5)  # a shorter wait never shortens a longer one
    assert limits.remaining("m") == 30
    assert limits.remaining("other") == 0
    clock.now += 29.5
    assert limits.remaining("m") == 0.5
    clock.now += 0.5
    assert limits.remaining("m") == 0


def test_only_a_backends_own_failures_are_its_faults() -> None:
    assert is_upstream_fault(Unreachable("refused"))
    assert is_upstream_fault(TimedOut("no first byte within 0.5s"))
    assert not is_upstream_fault(RateLimited("429", retry_after=3))
    assert not is_upstream_fault(QueueFull("full"))
    assert not is_upstream_fault(DeadlineSpent("no answer within 2s"))


async def test_on_pass_runs_once_a_whole_pass_is_done(fake_engine: FakeFactory) -> None:
    """The agent compares what it advertises after a pass, never halfway through one."""
    a = await fake_engine("vllm", models=["a"])
    b = await fake_engine("llamacpp", models=["b"])
    router = Router()
    router.add(connect(f"vllm:{a.url}"), Limits())
    router.add(connect(f"llamacpp:{b.url}"), Limits())
    seen: list[list[str]] = []
    router.on_pass = lambda: seen.append(sorted(m for u in router.upstreams for m in u.models))
    try:
        await router.refresh()
        await router.refresh_soon()
    finally:
        await router.aclose()
    assert seen == [["a", "b"], ["a", "b"]]
