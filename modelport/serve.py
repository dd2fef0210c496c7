"""serve(format, body) -> Reply: the data path shared by the gateway, the agent and the hub.

A request is decoded and validated in the client's wire format, routed, then either
relayed (the backend speaks that format: bytes pass through, metered on the way) or
transcoded (canonical events re-encoded in the client's format). Fallback to the next
candidate happens only before the first byte of an answer exists; after that, a failure
ends the stream with an error event in the client's format.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from modelport.errors import (
    BackendError,
    InvalidRequest,
    ModelNotFound,
    Overloaded,
    ProtocolError,
    RateLimited,
    TimedOut,
    Unsupported,
)
from modelport.records import RequestRecord
from modelport.router import QueueFull, Route, Router, is_upstream_fault
from modelport.types import (
    ChatRequest,
    Done,
    EmbedRequest,
    Event,
    Image,
    Usage,
    WireFormat,
)
from modelport.wire import anthropic, codec_for, openai
from modelport.wire.codec import StreamEncoder

SSE = "text/event-stream"
JSON = "application/json"


@dataclass
class Reply:
    """What the HTTP layer writes: a status, headers, and a whole body or a chunk stream."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    chunks: AsyncIterator[bytes] | None = None
    content_type: str = JSON


def error_status(format: WireFormat, err: BackendError) -> int:
    if format is WireFormat.OPENAI and isinstance(err, QueueFull):
        return 429
    return codec_for(format).error_status(err)


def error_reply(format: WireFormat, err: BackendError, headers: dict[str, str]) -> Reply:
    """A failure in the client's own format; a queue-full is 429 (OpenAI) or 529 (Anthropic)."""
    if format is WireFormat.OPENAI and isinstance(err, QueueFull):
        err = RateLimited(err.message, retry_after=err.retry_after, backend_id=err.backend_id)
    retry_after = getattr(err, "retry_after", None)
    if retry_after is not None:
        headers = {**headers, "Retry-After": str(max(1, round(retry_after)))}
    body = codec_for(format).encode_error(err)
    return Reply(status=error_status(format, err), headers=headers, body=body)


Observer = Callable[[RequestRecord], None]


@dataclass
class _Attempt:
    """The bookkeeping of one request as it runs (mutable, unlike the record it becomes)."""

    format: WireFormat
    endpoint: str
    model: str
    stream: bool
    request_id: str
    key_id: str
    started: float = field(default_factory=time.perf_counter)
    backend: str = ""
    passthrough: bool = False
    ttft_ms: float | None = None
    usage: Usage | None = None
    status: int = 200
    error: str = ""

    def first_byte(self) -> None:
        if self.ttft_ms is None:
            self.ttft_ms = (time.perf_counter() - self.started) * 1000

    def record(self) -> RequestRecord:
        usage = self.usage or Usage()
        return RequestRecord(
            request_id=self.request_id,
            format=self.format.value,
            endpoint=self.endpoint,
            model=self.model,
            backend=self.backend,
            status=self.status,
            stream=self.stream,
            passthrough=self.passthrough,
            key_id=self.key_id,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            ttft_ms=self.ttft_ms,
            duration_ms=(time.perf_counter() - self.started) * 1000,
            error=self.error,
            time=time.time() - (time.perf_counter() - self.started),
        )


class Service:
    """The gateway's brain without HTTP: bytes of a request in, a Reply out."""

    def __init__(
        self,
        router: Router,
        *,
        observe: Observer | None = None,
        request_timeout_s: float = 600.0,
    ) -> None:
        self.router = router
        self.observe = observe or (lambda record: None)
        self.request_timeout_s = request_timeout_s

    # -- chat ---------------------------------------------------------------------

    async def chat(
        self, format: WireFormat, body: bytes, *, request_id: str | None = None, key_id: str = ""
    ) -> Reply:
        request_id = request_id or uuid.uuid4().hex
        headers = {"x-request-id": request_id}
        codec = codec_for(format)
        try:
            request: ChatRequest = codec.decode_request(body)
        except (InvalidRequest, Unsupported) as exc:
            attempt = _Attempt(format, "chat", "", False, request_id, key_id)
            attempt.status = error_status(format, exc)
            attempt.error = type(exc).__name__
            self.observe(attempt.record())
            return error_reply(format, exc, headers)
        attempt = _Attempt(format, "chat", request.model, request.stream, request_id, key_id)
        try:
            routes = self._routes(request)
            reply = await self._first_answer(attempt, routes, request, body, headers)
        except BackendError as exc:
            attempt.status = error_status(format, exc)
            attempt.error = type(exc).__name__
            self.observe(attempt.record())
            return error_reply(format, exc, {**headers, "x-modelport-backend": attempt.backend})
        return reply

    def _resolve(self, model: str) -> list[Route]:
        """The candidates for `model`, or ModelNotFound with the closest names served."""
        routes = self.router.resolve(model)
        if not routes:
            hint = self.router.suggestions(model)
            tail = f"; did you mean {', '.join(repr(h) for h in hint)}?" if hint else ""
            raise ModelNotFound(f"model {model!r} is not served here{tail}")
        return routes

    def _routes(self, request: ChatRequest) -> list[Route]:
        routes = self._resolve(request.model)
        if _has_images(request):
            routes = [r for r in routes if _model_sees(r)]
            if not routes:
                raise InvalidRequest(
                    f"model {request.model!r} does not accept images", param="messages"
                )
        return routes

    async def _first_answer(
        self,
        attempt: _Attempt,
        routes: list[Route],
        request: ChatRequest,
        body: bytes,
        headers: dict[str, str],
    ) -> Reply:
        """Try candidates in order until one produces the first byte of an answer."""
        deadline = time.monotonic() + self.request_timeout_s
        last_error: BackendError | None = None
        for route in routes:
            upstream = route.upstream
            if not upstream.ready or not upstream.breaker.allow():
                continue
            attempt.backend = upstream.backend.id
            try:
                return await self._try(attempt, route, request, body, headers, deadline)
            except BackendError as exc:
                exc.backend_id = exc.backend_id or upstream.backend.id
                if is_upstream_fault(exc):
                    upstream.breaker.failure()
                if not (exc.retryable or isinstance(exc, ModelNotFound)):
                    raise
                last_error = exc
        if last_error is not None:
            raise last_error
        names = ", ".join(r.upstream.name for r in routes)
        raise Overloaded(
            f"no backend for {request.model!r} is ready (down, loading or failing: {names})",
            retry_after=5.0,
        )

    async def _try(
        self,
        attempt: _Attempt,
        route: Route,
        request: ChatRequest,
        body: bytes,
        headers: dict[str, str],
        deadline: float,
    ) -> Reply:
        upstream = route.upstream
        admission = upstream.admission
        try:
            async with asyncio.timeout_at(_loop_time(deadline)):
                await admission.acquire()
        except TimeoutError:
            raise TimedOut(f"no slot within {self.request_timeout_s:g}s") from None
        finish = _Finish(admission.release, lambda: self.observe(attempt.record()))
        headers = {**headers, "x-modelport-backend": upstream.backend.id}
        try:
            async with asyncio.timeout_at(_loop_time(deadline)):
                if attempt.format in upstream.backend.formats:
                    attempt.passthrough = True
                    reply = await self._relay(attempt, route, request, body, finish)
                else:
                    attempt.passthrough = False
                    reply = await self._transcode(attempt, route, request, body, finish)
        except TimeoutError:
            await finish.run(record=False)
            raise TimedOut(f"no answer within {self.request_timeout_s:g}s") from None
        except BaseException:
            await finish.run(record=False)
            raise
        upstream.breaker.success()
        reply.headers = headers
        if reply.chunks is not None:
            body_chunks = self._stream_body(attempt, reply.chunks, deadline, finish)
            reply.chunks = _Chunks(body_chunks, finish, attempt)
        return reply

    async def _stream_body(
        self,
        attempt: _Attempt,
        source: AsyncIterator[bytes],
        deadline: float,
        finish: _Finish,
    ) -> AsyncIterator[bytes]:
        """Bytes to the client; a failure ends them with an error frame in its format."""
        watchdog = _Deadline(_loop_time(deadline))
        try:
            while True:
                try:
                    chunk = await watchdog.next(source)
                except StopAsyncIteration:
                    break
                if chunk:
                    yield chunk
        except TimeoutError:
            attempt.error = "TimedOut"
            timeout = TimedOut(f"deadline of {self.request_timeout_s:g}s passed")
            yield stream_error(attempt.format, timeout)
        except BackendError as exc:
            attempt.error = type(exc).__name__
            yield stream_error(attempt.format, exc)
        except BaseException:
            attempt.error = attempt.error or "Cancelled"
            raise
        finally:
            watchdog.cancel()
            await _aclose(source)  # first: a producer task may still be reading the engine
            await finish.run()

    # -- passthrough ----------------------------------------------------------------

    async def _relay(
        self,
        attempt: _Attempt,
        route: Route,
        request: ChatRequest,
        body: bytes,
        finish: _Finish,
    ) -> Reply:
        if route.model != request.model:
            body = _with_model(body, route.model)
        relay = await route.upstream.backend.relay(attempt.format, body)

        async def close_relay() -> None:
            await relay.aclose()
            attempt.usage = relay.usage

        finish.before(close_relay)
        chunks = aiter(relay)
        try:
            first = await anext(chunks)
        except StopAsyncIteration:
            first = b""
        attempt.first_byte()
        if not request.stream:
            whole = first + b"".join([c async for c in chunks])
            if route.model != request.model:
                whole = _with_model(whole, request.model)
            await finish.run()
            return Reply(relay.status, body=whole, content_type=relay.content_type)
        return Reply(relay.status, chunks=_prepend(first, chunks), content_type=SSE)

    # -- transcoding ----------------------------------------------------------------

    async def _transcode(
        self,
        attempt: _Attempt,
        route: Route,
        request: ChatRequest,
        body: bytes,
        finish: _Finish,
    ) -> Reply:
        # Fields we did not model belong to the client's dialect; another dialect may refuse them.
        upstream_request = msgspec.structs.replace(request, model=route.model, extra={})
        backend = route.upstream.backend
        codec = codec_for(attempt.format)
        if not request.stream:
            response = await backend.chat(upstream_request)
            attempt.first_byte()
            attempt.usage = response.usage
            await finish.run()
            response = msgspec.structs.replace(response, model=request.model)
            return Reply(200, body=codec.encode_response(response))
        events = aiter(backend.stream(upstream_request))

        async def close_events() -> None:
            await _aclose(events)

        finish.before(close_events)
        try:
            first = await anext(events)
        except StopAsyncIteration:
            raise ProtocolError("the engine's stream was empty") from None
        attempt.first_byte()
        encoder = _stream_encoder(
            attempt.format, attempt.request_id, request.model, include_usage=_wants_usage(body)
        )
        encoded = _encoded(attempt, encoder, first, events)
        return Reply(200, chunks=_batched(encoded), content_type=SSE)

    # -- embeddings -------------------------------------------------------------------

    async def embeddings(
        self, body: bytes, *, request_id: str | None = None, key_id: str = ""
    ) -> Reply:
        request_id = request_id or uuid.uuid4().hex
        headers = {"x-request-id": request_id}
        format = WireFormat.OPENAI
        try:
            request: EmbedRequest = openai.decode_embed_request(body)
            encoding = _encoding_format(body)
        except BackendError as exc:
            return error_reply(format, exc, headers)
        attempt = _Attempt(format, "embeddings", request.model, False, request_id, key_id)
        try:
            result = await self._embed(attempt, self._resolve(request.model), request)
        except BackendError as exc:
            attempt.status = error_status(format, exc)
            attempt.error = type(exc).__name__
            self.observe(attempt.record())
            return error_reply(format, exc, headers)
        attempt.usage = result.usage
        self.observe(attempt.record())
        result = msgspec.structs.replace(result, model=request.model)
        headers["x-modelport-backend"] = attempt.backend
        body = openai.encode_embed_response(result, encoding_format=encoding)
        return Reply(status=200, headers=headers, body=body)

    async def _embed(self, attempt: _Attempt, routes: list[Route], request: EmbedRequest) -> Any:
        last_error: BackendError | None = None
        for route in routes:
            upstream = route.upstream
            if not upstream.ready or not upstream.breaker.allow():
                continue
            attempt.backend = upstream.backend.id
            try:
                async with asyncio.timeout(self.request_timeout_s), upstream.admission.slot():
                    result = await upstream.backend.embed(
                        msgspec.structs.replace(request, model=route.model)
                    )
            except TimeoutError:
                last_error = TimedOut(f"no answer within {self.request_timeout_s:g}s")
                upstream.breaker.failure()
                continue
            except BackendError as exc:
                if is_upstream_fault(exc):
                    upstream.breaker.failure()
                if not exc.retryable:
                    raise
                last_error = exc
                continue
            upstream.breaker.success()
            return result
        raise last_error or Overloaded(
            f"no backend for {request.model!r} is ready", retry_after=5.0
        )

    # -- count_tokens -------------------------------------------------------------------

    async def count_tokens(
        self, body: bytes, *, request_id: str | None = None, key_id: str = ""
    ) -> Reply:
        request_id = request_id or uuid.uuid4().hex
        headers = {"x-request-id": request_id}
        format = WireFormat.ANTHROPIC
        attempt = _Attempt(format, "count_tokens", "", False, request_id, key_id)
        try:
            request = anthropic.decode_count_tokens_request(body)
            attempt.model = request.model
            tokens = await self._count(attempt, self._routes(request), request)
        except BackendError as exc:
            attempt.status = error_status(format, exc)
            attempt.error = type(exc).__name__
            self.observe(attempt.record())
            return error_reply(format, exc, headers)
        attempt.usage = Usage(input_tokens=tokens)
        self.observe(attempt.record())
        headers["x-modelport-backend"] = attempt.backend
        return Reply(200, headers, anthropic.encode_count_tokens_response(tokens))

    async def _count(self, attempt: _Attempt, routes: list[Route], request: ChatRequest) -> int:
        """The first backend serving the model that can count; those that cannot are skipped."""
        for route in routes:
            counter = getattr(route.upstream.backend, "count_tokens", None)
            if counter is None or not route.upstream.ready:
                continue
            attempt.backend = route.upstream.backend.id
            try:
                async with asyncio.timeout(self.request_timeout_s):
                    tokens: int = await counter(msgspec.structs.replace(request, model=route.model))
            except TimeoutError:
                raise TimedOut("count_tokens timed out") from None
            except Unsupported:
                continue
            return tokens
        attempt.backend = ""
        raise Unsupported(f"no backend serving {request.model!r} can count tokens")


# -- helpers ---------------------------------------------------------------------------


def _loop_time(deadline: float) -> float:
    """time.monotonic() deadline -> the event loop's clock, which asyncio.timeout_at wants."""
    loop = asyncio.get_running_loop()
    return loop.time() + (deadline - time.monotonic())


def _has_images(request: ChatRequest) -> bool:
    return any(isinstance(p, Image) for m in request.messages for p in m.content)


def _model_sees(route: Route) -> bool:
    model = route.upstream.models.get(route.model)
    return model is None or model.capabilities.vision


def _with_model(body: bytes, model: str) -> bytes:
    """The same JSON object with its `model` member replaced."""
    payload = msgspec.json.decode(body)
    if isinstance(payload, dict) and "model" in payload:
        payload["model"] = model
        return msgspec.json.encode(payload)
    return body


def _encoding_format(body: bytes) -> str:
    payload = msgspec.json.decode(body)
    value = payload.get("encoding_format") if isinstance(payload, dict) else None
    return value if value in ("float", "base64") else "float"


def _stream_encoder(
    format: WireFormat, request_id: str, model: str, *, include_usage: bool = True
) -> StreamEncoder:
    return codec_for(format).stream_encoder(
        request_id=request_id, model=model, include_usage=include_usage
    )


class _StreamOptions(msgspec.Struct):
    include_usage: bool = False


class _UsageAsked(msgspec.Struct):
    stream_options: _StreamOptions | None = None


_usage_asked = msgspec.json.Decoder(_UsageAsked)


def _wants_usage(body: bytes) -> bool:
    """Whether an OpenAI client asked for the usage chunk (`stream_options.include_usage`)."""
    try:
        options = _usage_asked.decode(body).stream_options
    except (msgspec.DecodeError, msgspec.ValidationError):
        return False
    return options is not None and options.include_usage


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield first
    async for chunk in rest:
        yield chunk


async def _encoded(
    attempt: _Attempt, encoder: StreamEncoder, first: Event, events: AsyncIterator[Event]
) -> AsyncIterator[bytes]:
    """Canonical events as the client's wire bytes, noting usage as it goes by."""
    event = first
    while True:
        if isinstance(event, Done):
            attempt.usage = event.usage
        chunk = encoder.encode(event)
        if chunk:
            yield chunk
        try:
            event = await anext(events)
        except StopAsyncIteration:
            return


async def _batched(source: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """What `source` makes without waiting, joined: one write per upstream read, not per event.

    A producer task runs the source; this side wakes when something is there and takes all
    that has piled up. Tokens that arrive one per read still go out one by one, at once.
    """
    pending: list[bytes] = []
    ready = asyncio.Event()
    ended = False
    failure: BaseException | None = None

    async def produce() -> None:
        nonlocal ended, failure
        try:
            async for chunk in source:
                pending.append(chunk)
                ready.set()
        except BaseException as exc:  # handed to the consumer, which owns the request
            failure = exc
        finally:
            ended = True
            ready.set()

    producer = asyncio.create_task(produce())
    try:
        while True:
            await ready.wait()
            ready.clear()
            if pending:
                batch = pending[0] if len(pending) == 1 else b"".join(pending)
                pending.clear()
                yield batch
            if ended:
                if failure is not None and not isinstance(failure, asyncio.CancelledError):
                    raise failure
                return
    finally:
        producer.cancel()
        await asyncio.gather(producer, return_exceptions=True)


class _Deadline:
    """One timer for a whole stream. When it fires it cancels the stream's task only if that
    task is waiting on the engine, never while it is suspended in a yield (the consumer's
    time), which a timeout context spanning the loop would get wrong; and it costs one timer
    per stream rather than one per chunk."""

    def __init__(self, when: float) -> None:
        self.expired = False
        self._waiting: asyncio.Task[Any] | None = None
        self._handle = asyncio.get_running_loop().call_at(when, self._fire)

    def _fire(self) -> None:
        self.expired = True
        if self._waiting is not None:
            self._waiting.cancel()

    async def next(self, source: AsyncIterator[bytes]) -> bytes:
        if self.expired:
            raise TimeoutError
        task = asyncio.current_task()
        self._waiting = task
        try:
            return await anext(source)
        except asyncio.CancelledError:
            if self.expired and task is not None and task.uncancel() == 0:
                raise TimeoutError from None
            raise
        finally:
            self._waiting = None

    def cancel(self) -> None:
        self._handle.cancel()


class _Finish:
    """A request's end, run exactly once however it comes: close upstream, free the slot,
    record. `run(record=False)` is for an attempt that fails before answering (the caller
    may fall back to another backend and records the request itself)."""

    def __init__(self, release: Callable[[], None], record: Callable[[], None]) -> None:
        self._release = release
        self._record = record
        self._closers: list[Callable[[], Awaitable[None]]] = []
        self._done = False

    def before(self, closer: Callable[[], Awaitable[None]]) -> None:
        self._closers.append(closer)

    async def run(self, *, record: bool = True) -> None:
        if self._done:
            return
        self._done = True
        try:
            for closer in self._closers:
                await closer()
        finally:
            self._release()
            if record:
                self._record()


class _Chunks:
    """A stream reply's body. Closing it runs the request's end even when nothing was read
    (a client that leaves as the answer starts), which a bare async generator would skip."""

    def __init__(self, body: AsyncIterator[bytes], finish: _Finish, attempt: _Attempt) -> None:
        self._body = body
        self._finish = finish
        self._attempt = attempt
        self._ended = False

    def __aiter__(self) -> _Chunks:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await anext(self._body)
        except StopAsyncIteration:
            self._ended = True
            raise

    async def aclose(self) -> None:
        if not self._ended:
            self._attempt.error = self._attempt.error or "Cancelled"
        await _aclose(self._body)
        await self._finish.run()


def stream_error(format: WireFormat, err: BackendError) -> bytes:
    """An error frame for a stream that is already under way, in the client's format."""
    encoder = _stream_encoder(format, "", "")
    return encoder.error(err)


async def _aclose(iterator: AsyncIterator[Any]) -> None:
    close = getattr(iterator, "aclose", None)
    if close is not None:
        await close()
