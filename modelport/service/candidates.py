"""THE candidate loop: every endpoint tries its backends by the same rules.

For each candidate in the router's order: pass over it while its engine's Retry-After
holds its model off; skip it once the request's deadline has passed, unless it is ready
and its breaker lets it through; take an admission slot; run the endpoint's call until the
first byte of an answer exists, within the attempt's first-byte limit (never past the
deadline). A failure before that byte falls back to the next candidate when it is
retryable, a ModelNotFound, refused images or the engine refusing the gateway's
credential; anything else is the answer. One deadline covers the whole request, across
candidates. After the first byte there is no fallback: a stream's failure is the
pipeline's business (an error frame in the client's format).

The named seams below (`_rate_limited`, `_may_try`, `_first_byte_limit`,
`_attempt_budget`, `_attributed`, `_heed`, `_charges_breaker`, `_falls_back`) are the one
place each rule lives; reliability work changes them there (docs/service.md).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from modelport.errors import (
    AuthError,
    BackendError,
    DeadlineSpent,
    ImagesRefused,
    InvalidRequest,
    ModelNotFound,
    Overloaded,
    ProtocolError,
    RateLimited,
    TimedOut,
    Unreachable,
    Unsupported,
    UpstreamAuthError,
)
from modelport.router import Route, Router, Upstream, is_upstream_fault
from modelport.scrub import name_engine
from modelport.service.attempt import Attempt, Deadline
from modelport.service.pipeline import Source
from modelport.service.reply import JSON


@dataclass(slots=True)
class Answer:
    """What one candidate produced: a whole body, or a stream whose first byte exists."""

    status: int
    body: bytes = b""
    content_type: str = JSON
    stream: Source | None = None


class Lease:
    """One candidate's hold on its upstream: the admission slot, and what must be closed
    (the engine's response or stream) before the slot is given back. Ends exactly once."""

    __slots__ = ("_closers", "_ended", "_release")

    def __init__(self, release: Callable[[], None]) -> None:
        self._release = release
        self._closers: list[Callable[[], Awaitable[None]]] = []
        self._ended = False

    def close_first(self, closer: Callable[[], Awaitable[None]]) -> None:
        """Run `closer` when the lease ends, before the slot is freed."""
        self._closers.append(closer)

    async def end(self) -> None:
        if self._ended:
            return
        self._ended = True
        try:
            for closer in self._closers:
                await closer()
        finally:
            self._release()


class Operation(Protocol):
    """One endpoint's part of a request, plugged into the loop: its decoded request, which
    candidates may serve it, and what a call to one of them is."""

    @property
    def model(self) -> str: ...  # the model the client asked for

    @property
    def stream(self) -> bool: ...

    @property
    def passes_over_unsupported(self) -> bool:
        """Whether a candidate that answers Unsupported is skipped rather than the answer."""
        ...

    def routes(self, router: Router) -> list[Route]: ...

    async def call(self, route: Route, attempt: Attempt, lease: Lease) -> Answer:
        """Up to the first byte of the answer; register upstream closers on the lease."""
        ...


def resolve(router: Router, model: str) -> list[Route]:
    """The candidates for `model`, or ModelNotFound with the closest names served."""
    routes = router.resolve(model)
    if not routes:
        raise not_found(router, model)
    return routes


def not_found(router: Router, model: str) -> ModelNotFound:
    """The one wording of an unknown model, with the closest names served."""
    hint = router.suggestions(model)
    tail = f"; did you mean {', '.join(repr(h) for h in hint)}?" if hint else ""
    return ModelNotFound(f"model {model!r} is not served here{tail}")


def able(routes: list[Route], capability: str, refusal: str, *, param: str) -> list[Route]:
    """The candidates whose model may have `capability` (a Capabilities field): known to,
    or not known either way (then the engine decides, and its refusal becomes a clear 400).
    When every candidate is known not to: InvalidRequest(refusal), before any engine."""
    kept = [r for r in routes if _capability(r, capability) is not False]
    if not kept:
        raise InvalidRequest(refusal, param=param)
    return kept


def _capability(route: Route, capability: str) -> bool | None:
    model = route.upstream.models.get(route.model)
    if model is None:  # named as "upstream/model" but not listed: nothing known
        return None
    value: bool | None = getattr(model.capabilities, capability)
    return value


async def first_answer(
    op: Operation, routes: list[Route], attempt: Attempt, deadline: Deadline
) -> tuple[Answer, Lease]:
    """Try candidates in order until one produces the first byte of an answer.

    Returns it with the lease the caller must end (at once for a whole body, when the
    stream ends otherwise). Raises the failure to answer with when no candidate answered;
    `attempt.backend` then names the backend whose failure it is, or "" when none was asked.
    """
    last_error: BackendError | None = None
    last_route: Route | None = None
    passed_over: Unsupported | None = None
    held: RateLimited | None = None  # the soonest Retry-After among candidates skipped for one
    tried = False  # whether an earlier candidate used part of the deadline
    for route in routes:
        upstream = route.upstream
        wait = _rate_limited(route)
        if wait:
            held = _sooner(held, route, wait)
            continue
        if not _may_try(upstream, deadline):
            continue
        attempt.trying(route)
        try:
            return await _attempt(op, route, attempt, deadline, first=not tried)
        except BackendError as exc:
            err = _attributed(exc, upstream)
            if isinstance(err, Unsupported) and op.passes_over_unsupported:
                upstream.breaker.neutral()
                passed_over = err  # it could not take the request: not tried
                continue
            tried = True
            _heed(err, route)
            if not _falls_back(err):
                if err is exc:
                    raise
                raise err from exc
            last_error, last_route = err, route
        except BaseException:  # cancelled: a half-open trial it held says nothing
            upstream.breaker.neutral()
            raise
    attempt.trying(last_route)
    if last_error is not None:
        raise last_error
    if held is not None:
        raise held
    if passed_over is not None:
        raise passed_over
    names = ", ".join(r.upstream.name for r in routes)
    raise Overloaded(
        f"no backend for {op.model!r} is ready (down, loading or failing: {names})",
        retry_after=5.0,
    )


async def _attempt(
    op: Operation, route: Route, attempt: Attempt, deadline: Deadline, *, first: bool
) -> tuple[Answer, Lease]:
    """One candidate: a slot within the request's deadline, then the call within this
    attempt's budget (its first-byte limit, never past the deadline)."""
    upstream = route.upstream
    admission = upstream.admission
    if not admission.try_acquire():  # a free slot needs no timer: most requests find one
        first = False  # time in our queue is not the engine's: the deadline may not blame it
        try:
            async with asyncio.timeout_at(deadline.at):
                await admission.acquire()
        except TimeoutError:
            raise DeadlineSpent(f"no slot within {deadline.timeout_s:g}s") from None
    lease = Lease(admission.release)
    budget = _attempt_budget(upstream, deadline)
    try:
        async with asyncio.timeout_at(budget):
            answer = await op.call(route, attempt, lease)
    except TimeoutError:
        await lease.end()
        raise _timed_out(upstream, deadline, budget, first=first) from None
    except BaseException:
        await lease.end()
        raise
    upstream.breaker.success()
    return answer, lease


def _timed_out(upstream: Upstream, deadline: Deadline, budget: float, *, first: bool) -> TimedOut:
    """Which clock ended an attempt, and so whose fault it is (`_charges_breaker`)."""
    if budget < deadline.at:  # its own first-byte limit: the engine stalled
        limit = _first_byte_limit(upstream, deadline)
        return TimedOut(f"backend {upstream.name!r} sent no first byte within {limit:g}s")
    message = f"no answer within {deadline.timeout_s:g}s"
    # The request's deadline: the engine's fault only when it had the whole of it (first
    # asked, no wait in our queue).
    return TimedOut(message) if first else DeadlineSpent(message)


def _sooner(held: RateLimited | None, route: Route, wait: float) -> RateLimited:
    """The 429 to answer when every candidate is held off: the one free soonest."""
    if held is not None and held.retry_after is not None and held.retry_after <= wait:
        return held
    return RateLimited(
        f"model {route.model!r} on backend {route.upstream.name!r} is rate limited by its"
        f" engine; retry after {math.ceil(wait)}s",
        retry_after=wait,
    )


# -- the rules, one place each ---------------------------------------------------------------


def _rate_limited(route: Route) -> float:
    """Seconds this candidate's engine asked us (429 + Retry-After) to leave its model alone;
    0 when it may be asked. Held candidates are passed over, never asked."""
    return route.upstream.rate_limits.remaining(route.model)


def _may_try(upstream: Upstream, deadline: Deadline) -> bool:
    """Whether to start an attempt on `upstream` now: the request's deadline has not passed
    (an attempt started after it would fail at once, and be blamed on the wrong backend),
    the upstream is ready (or starting: the backend then waits for it, within its own
    bound, `server.start_wait_s`), and its breaker lets it through.

    The breaker check comes last: letting a half-open breaker's one trial through uses it.
    """
    ready = upstream.ready or upstream.starting
    return not deadline.passed() and ready and upstream.breaker.allow()


def _first_byte_limit(upstream: Upstream, deadline: Deadline) -> float:
    """Seconds an attempt on `upstream` may take to its first byte: the backend's own
    `first_byte_timeout_s`, else the server's."""
    own = upstream.first_byte_timeout_s
    return own if own is not None else deadline.first_byte_s


def _attempt_budget(upstream: Upstream, deadline: Deadline) -> float:
    """When (loop clock) this attempt must have its first byte: its first-byte limit from
    now (Envoy's per_try_timeout), never later than the request's deadline."""
    now = asyncio.get_running_loop().time()
    return min(now + _first_byte_limit(upstream, deadline), deadline.at)


def _attributed(exc: BackendError, upstream: Upstream) -> BackendError:
    """A candidate's failure as the client hears it: it names the backend, and the engine's
    refusal of the gateway's own credential is not the client's key at fault."""
    exc.backend_id = exc.backend_id or upstream.backend.id
    if isinstance(exc, Unreachable | TimedOut | ProtocolError):
        # Transport failures say "the engine", never its address: name it as configured.
        exc.message = name_engine(exc.message, upstream.name)
        exc.args = (exc.message,)
    if isinstance(exc, AuthError):
        status = exc.status if exc.status in (401, 402, 403) else 401
        return UpstreamAuthError(upstream.name, status, backend_id=exc.backend_id, raw=exc.raw)
    return exc


def _heed(exc: BackendError, route: Route) -> None:
    """What a failure does to its own upstream: the breaker counts it or not
    (`_charges_breaker`), and a 429 with Retry-After holds that model off for the wait."""
    upstream = route.upstream
    if _charges_breaker(exc, upstream):
        upstream.breaker.failure()
    else:
        upstream.breaker.neutral()
    if isinstance(exc, RateLimited) and exc.retry_after:
        upstream.rate_limits.hold(route.model, exc.retry_after)


def _charges_breaker(exc: BackendError, upstream: Upstream) -> bool:
    """Whether this failure counts against `upstream`'s breaker: only its own faults
    (`is_upstream_fault`: not a 429, not our full queue, not a deadline that earlier
    candidates spent; its own first-byte timeout is one)."""
    return is_upstream_fault(exc)


def _falls_back(exc: BackendError) -> bool:
    """Whether a failure before the first byte lets the next candidate try: an engine that
    refused the request's images leaves it to one that may see them, and one that refused
    the gateway's credential to one that may take its own."""
    return exc.retryable or isinstance(exc, ModelNotFound | ImagesRefused | UpstreamAuthError)
