"""THE candidate loop: every endpoint tries its backends by the same rules.

For each candidate in the router's order: skip it unless it is ready and its breaker lets
it through; take an admission slot; run the endpoint's call until the first byte of an
answer exists. A failure before that byte falls back to the next candidate when it is
retryable or a ModelNotFound; anything else is the answer. One deadline covers the whole
request, across candidates. After the first byte there is no fallback: a stream's failure
is the pipeline's business (an error frame in the client's format).

The named seams below (`_may_try`, `_attempt_budget`, `_charges_breaker`, `_falls_back`)
are the one place each rule lives; reliability work changes them there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from modelport.errors import (
    BackendError,
    ImagesRefused,
    InvalidRequest,
    ModelNotFound,
    Overloaded,
    TimedOut,
    Unsupported,
)
from modelport.router import Route, Router, Upstream, is_upstream_fault
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
    stream ends otherwise). Raises the failure to answer with when no candidate answered.
    """
    last_error: BackendError | None = None
    passed_over: Unsupported | None = None
    for route in routes:
        upstream = route.upstream
        if not _may_try(upstream, deadline):
            continue
        tried_before = attempt.backend
        attempt.backend = upstream.backend.id
        try:
            return await _attempt(op, route, attempt, deadline)
        except BackendError as exc:
            exc.backend_id = exc.backend_id or upstream.backend.id
            if isinstance(exc, Unsupported) and op.passes_over_unsupported:
                attempt.backend = tried_before  # it could not take the request: not tried
                passed_over = exc
                continue
            if _charges_breaker(exc, upstream):
                upstream.breaker.failure()
            if not _falls_back(exc):
                raise
            last_error = exc
    if last_error is not None:
        raise last_error
    if passed_over is not None:
        raise passed_over
    names = ", ".join(r.upstream.name for r in routes)
    raise Overloaded(
        f"no backend for {op.model!r} is ready (down, loading or failing: {names})",
        retry_after=5.0,
    )


async def _attempt(
    op: Operation, route: Route, attempt: Attempt, deadline: Deadline
) -> tuple[Answer, Lease]:
    """One candidate: a slot, then the call, both within this attempt's budget."""
    upstream = route.upstream
    budget = _attempt_budget(deadline)
    admission = upstream.admission
    if not admission.try_acquire():  # a free slot needs no timer: most requests find one
        try:
            async with asyncio.timeout_at(budget):
                await admission.acquire()
        except TimeoutError:
            raise TimedOut(f"no slot within {deadline.timeout_s:g}s") from None
    lease = Lease(admission.release)
    try:
        async with asyncio.timeout_at(budget):
            answer = await op.call(route, attempt, lease)
    except TimeoutError:
        await lease.end()
        raise TimedOut(f"no answer within {deadline.timeout_s:g}s") from None
    except BaseException:
        await lease.end()
        raise
    upstream.breaker.success()
    return answer, lease


# -- the rules, one place each ---------------------------------------------------------------


def _may_try(upstream: Upstream, deadline: Deadline) -> bool:
    """Whether to start an attempt on `upstream` now: ready (or starting: the backend then
    waits for it, within its own bound), and its breaker lets it through.

    The breaker check comes last: letting a half-open breaker's one trial through uses it.
    """
    return (upstream.ready or upstream.starting) and upstream.breaker.allow()


def _attempt_budget(deadline: Deadline) -> float:
    """When (loop clock) this attempt must have its first byte: today, the request deadline."""
    return deadline.at


def _charges_breaker(exc: BackendError, upstream: Upstream) -> bool:
    """Whether this failure counts against `upstream`'s breaker."""
    return is_upstream_fault(exc)


def _falls_back(exc: BackendError) -> bool:
    """Whether a failure before the first byte lets the next candidate try: an engine that
    refused the request's images leaves it to one that may see them."""
    return exc.retryable or isinstance(exc, ModelNotFound | ImagesRefused)
