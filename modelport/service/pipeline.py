"""The one stream pipeline: an upstream's answer, after its first byte, to the client's body.

    relay bytes ──────► RelaySource ────────┐
                                            ├─► StreamBody ──► the HTTP layer writes it
    canonical events ─► TranscodedSource ───┘   (deadline, error frame, end of the request)

A Source yields bytes already in the client's format; StreamBody adds what every stream
needs whatever its source. Nothing here runs per chunk that a chunk does not need: one
timer per stream, no timeout context per read, one write per upstream read.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

from modelport.errors import BackendError, TimedOut
from modelport.service.attempt import Attempt, Deadline
from modelport.service.reply import stream_error
from modelport.types import Done, Event
from modelport.wire.codec import StreamEncoder


class Source(Protocol):
    """Bytes in the client's format from one upstream.

    `__anext__` raises StopAsyncIteration at the end and a BackendError when the upstream
    fails. `aclose` stops reading that is still going on; closing the upstream itself is
    the lease's job (candidates.Lease), which also covers a failure before the first byte.
    """

    def __anext__(self) -> Awaitable[bytes]: ...

    def error(self, err: BackendError) -> bytes | None:
        """The error frame that ends this source's stream, or None for the dialect's plain
        one (an encoder that has started an answer can close it, as Responses'
        `response.failed` does)."""
        ...

    async def aclose(self) -> None: ...


# Encoded bytes a transcoded stream may hold that its reader has not taken; beyond it the
# producer stops reading the engine until the reader catches up.
PENDING_LIMIT = 1024 * 1024


async def _at_once(chunk: bytes) -> bytes:
    return chunk


class RelaySource:
    """A relay's bytes, with the first chunk (read to commit to this backend) in front."""

    __slots__ = ("_first", "_rest")

    def __init__(self, first: bytes, rest: AsyncIterator[bytes]) -> None:
        self._first: bytes | None = first
        self._rest = rest

    def __anext__(self) -> Awaitable[bytes]:
        # The relay's own awaitable, not a coroutine around it: one frame less per chunk.
        first = self._first
        if first is not None:
            self._first = None
            return _at_once(first)
        return self._rest.__anext__()

    def error(self, err: BackendError) -> bytes | None:
        return None  # the engine's answer: we know none of its ids

    async def aclose(self) -> None:
        return None  # nothing reads ahead; the lease closes the relay and takes its usage


class TranscodedSource:
    """Canonical events as the client's bytes: one write per upstream read, not per event.

    A producer task reads the engine and encodes each event as it arrives; a read here
    takes everything that piled up since the last one, joined. Tokens that arrive one per
    upstream read still go out one by one, at once. What piles up is bounded
    (PENDING_LIMIT): past it the producer waits for the reader, so a slow reader slows the
    engine down instead of filling memory. The producer notes the usage the
    final event reports on the attempt.
    """

    __slots__ = (
        "_encoder",
        "_ended",
        "_failure",
        "_pending",
        "_pending_size",
        "_producer",
        "_ready",
        "_room",
    )

    def __init__(
        self, first: Event, events: AsyncIterator[Event], encoder: StreamEncoder, attempt: Attempt
    ) -> None:
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._ready = asyncio.Event()
        self._room = asyncio.Event()  # set while the producer may read on
        self._room.set()
        self._ended = False
        self._failure: BaseException | None = None
        self._encoder = encoder
        self._producer = asyncio.create_task(self._produce(first, events, encoder, attempt))

    async def _produce(
        self, first: Event, events: AsyncIterator[Event], encoder: StreamEncoder, attempt: Attempt
    ) -> None:
        pending, ready, room, encode = self._pending, self._ready, self._room, encoder.encode
        event = first
        try:
            while True:
                if isinstance(event, Done):
                    attempt.usage = event.usage
                chunk = encode(event)
                if chunk:
                    pending.append(chunk)
                    ready.set()
                    self._pending_size += len(chunk)
                    if self._pending_size > PENDING_LIMIT:
                        # A reader slower than the engine: stop reading the engine until
                        # it takes what piled up (backpressure, not an unbounded buffer).
                        room.clear()
                        await room.wait()
                event = await events.__anext__()
        except StopAsyncIteration:
            pass
        except BaseException as exc:  # handed to the reader, which owns the request
            self._failure = exc
        finally:
            self._ended = True
            ready.set()

    async def __anext__(self) -> bytes:
        pending = self._pending
        while not pending:
            if self._ended:
                failure = self._failure
                if failure is not None and not isinstance(failure, asyncio.CancelledError):
                    raise failure
                raise StopAsyncIteration
            await self._ready.wait()
            self._ready.clear()
        batch = pending[0] if len(pending) == 1 else b"".join(pending)
        pending.clear()
        self._pending_size = 0
        self._room.set()
        return batch

    def error(self, err: BackendError) -> bytes | None:
        return self._encoder.error(err)

    async def aclose(self) -> None:
        self._producer.cancel()
        await asyncio.gather(self._producer, return_exceptions=True)


class StreamBody:
    """A stream reply's body: what the HTTP layer iterates, then closes.

    - The deadline is one timer per stream. When it fires it cancels the reading task only
      while that task waits for the upstream, never while the HTTP layer writes (the
      consumer's time), which a timeout context around each read could not tell apart, and
      it costs one timer per stream rather than one per chunk.
    - A failure (the upstream's, or the deadline) ends the body with an error frame in the
      client's format, never with a made-up success; the read after it ends the body.
    - `aclose()` ends the request exactly once, read to the end or not at all (a client that
      leaves as the answer starts): stop the source, then `end`, which closes the upstream
      before it frees the slot, then records the request.
    """

    __slots__ = (
        "_attempt",
        "_closed",
        "_deadline",
        "_done",
        "_end",
        "_expired",
        "_finished",
        "_handle",
        "_source",
        "_waiting",
        "failure",
    )

    def __init__(
        self,
        source: Source,
        attempt: Attempt,
        deadline: Deadline,
        end: Callable[[], Awaitable[None]],
    ) -> None:
        self._source = source
        self._attempt = attempt
        self._deadline = deadline
        self._end = end
        self._done = False  # no more chunks: the source ended, failed, or the body was closed
        self._finished = False  # the source ended by itself: nothing was cut short
        self._closed = False
        self._expired = False
        self._waiting: asyncio.Task[object] | None = None
        # The failure the body ended with: the chunk that carried its error frame was the
        # last (an agent sends the failure as job_error instead of that frame).
        self.failure: BackendError | None = None
        self._handle = asyncio.get_running_loop().call_at(deadline.at, self._fire)

    def _fire(self) -> None:
        self._expired = True
        if self._waiting is not None:
            self._waiting.cancel()

    def __aiter__(self) -> StreamBody:
        return self

    async def __anext__(self) -> bytes:
        if self._done:
            await self.aclose()
            raise StopAsyncIteration
        task = asyncio.current_task()
        try:
            if self._expired:
                raise TimeoutError
            self._waiting = task
            try:
                chunk = await self._source.__anext__()
                while not chunk:
                    chunk = await self._source.__anext__()
            except asyncio.CancelledError:
                if self._expired and task is not None and task.uncancel() == 0:
                    raise TimeoutError from None  # our own timer, not the client leaving
                raise
            finally:
                self._waiting = None
        except StopAsyncIteration:
            self._finished = True
            await self.aclose()
            raise
        except TimeoutError:
            return self._fail(TimedOut(f"deadline of {self._deadline.timeout_s:g}s passed"))
        except BackendError as exc:
            return self._fail(exc)
        except BaseException:  # cancelled: the client left, or the gateway is stopping
            await self.aclose()
            raise
        return chunk

    def _fail(self, err: BackendError) -> bytes:
        self._attempt.error = type(err).__name__
        self.failure = err
        self._done = True
        frame = self._source.error(err)
        return stream_error(self._attempt.format, err) if frame is None else frame

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = self._done = True
        self._handle.cancel()
        if not self._finished and not self._attempt.error:
            self._attempt.error = "Cancelled"
        try:
            await self._source.aclose()  # first: a producer task may still read the engine
        finally:
            await self._end()
