"""The one HTTP client every backend uses: aiohttp, with transport failures made typed.

Backends never see an aiohttp exception: refused connections become `Unreachable`,
timeouts `TimedOut`, and a non-2xx answer is decoded by the caller's wire format into
the matching error class before anything else happens.
"""

from __future__ import annotations

import enum
import os
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp
import msgspec

from modelport.errors import BackendError, ProtocolError, TimedOut, Unreachable
from modelport.scrub import hide_address, scrub_error
from modelport.types import BackendHealth, Event
from modelport.wire.sse import MAX_FRAME_BYTES

if TYPE_CHECKING:
    from aiohttp.client_reqrep import ClientRequest
    from aiohttp.connector import Connection
    from aiohttp.tracing import Trace

    from modelport.wire.codec import EngineCodec, Framer, StreamDecoder

ErrorDecoder = Callable[..., BackendError]
T = TypeVar("T")

_json_encode = msgspec.json.Encoder().encode

MAX_BODY_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class BodyLimits:
    """How much of an engine's answer the gateway holds: one frame of a stream, and one
    whole (non-streamed) body, which is buffered before anything is sent. A stream has no
    total cap: it holds one frame at a time, and a long generation is no fault."""

    frame_bytes: int = MAX_FRAME_BYTES
    body_bytes: int = MAX_BODY_BYTES


# Process-wide, like the event loop: the gateway sets them from [server] when it starts
# (one gateway per process, as `serve` runs it) and puts the old ones back when it stops.
_limits = [BodyLimits()]


def body_limits() -> BodyLimits:
    return _limits[0]


def set_body_limits(limits: BodyLimits) -> BodyLimits:
    """Use `limits` from now on; the ones they replace."""
    previous, _limits[0] = _limits[0], limits
    return previous


def body_too_large(limit: int) -> ProtocolError:
    return ProtocolError(
        f"the engine's answer is over the {limit / (1024 * 1024):g} MiB limit "
        "(max_upstream_body_mb)"
    )


class Phase(enum.Enum):
    """Where a transport failure happened; the same exception means a different thing in each.

    Before an answer (SEND, PROBE) nothing reached the engine or it never answered, so another
    backend may be tried; once a body is being read (READ, STREAM) the answer broke off.
    """

    SEND = "send"
    PROBE = "probe"
    READ = "read"
    STREAM = "stream"


# No URL in these: messages reach clients, and where the engines live is not theirs to know.
_TIMED_OUT = {
    Phase.SEND: "no answer from the engine in time",
    Phase.PROBE: "the engine did not answer in time",
    Phase.READ: "the engine stopped answering",
    Phase.STREAM: "the engine stopped sending mid-stream",
}


class TransportErrors:
    """The one map from aiohttp's and the socket's exceptions to our hierarchy.

    Wrapped around every send and every read (httpx's map_httpcore_exceptions is the model),
    so no backend ever sees an aiohttp exception. A class, not a generator context manager:
    it is entered twice per request, and the URL (`url`, or the response's) is only turned
    into text when something failed.
    """

    __slots__ = ("backend_id", "phase", "url")

    def __init__(self, phase: Phase, *, url: object, backend_id: str | None) -> None:
        self.phase = phase
        self.url = url
        self.backend_id = backend_id

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        if exc is not None and isinstance(exc, _TRANSPORT_FAILURES):
            raise _typed(exc, self.phase, str(self.url), self.backend_id) from exc


_TRANSPORT_FAILURES = (TimeoutError, aiohttp.ClientError, ConnectionError)


def _typed(exc: BaseException, phase: Phase, url: str, backend_id: str | None) -> BackendError:
    """What a transport failure in `phase` means, as one of our errors."""
    if isinstance(exc, TimeoutError):
        return TimedOut(_TIMED_OUT[phase], backend_id=backend_id)
    if isinstance(exc, aiohttp.ClientConnectorError):
        # strerror may quote the address ("Connect call failed ('10.0.0.5', 8000)"): the
        # errno's own words say the same without it.
        errno = exc.os_error.errno
        why = os.strerror(errno) if errno else type(exc.os_error).__name__
        return Unreachable(f"cannot connect to the engine: {why}", backend_id=backend_id)
    if phase in (Phase.READ, Phase.STREAM):
        # The connection dropped under the body (the engine died or reset it): the engine's
        # failure like a refused connection, so retryable. Before the client's first byte the
        # next candidate answers and the breaker counts it; after it, nothing may retry.
        what = "answer" if phase is Phase.READ else "stream"
        why = hide_address(str(exc), url)
        return ProtocolError(f"the {what} broke off: {why}", backend_id=backend_id, retryable=True)
    why = hide_address(str(exc), url)
    return Unreachable(f"cannot connect to the engine: {why}", backend_id=backend_id)


class _Attempt:
    """One send: whether it took a kept-alive connection from the pool."""

    __slots__ = ("reused",)

    def __init__(self) -> None:
        self.reused = False


# The send under way in this task, for the connector to mark (a context variable, not
# aiohttp's tracing: a TraceConfig costs every request some 40 us of CPU, ~10%).
_attempt: ContextVar[_Attempt | None] = ContextVar("modelport_send_attempt", default=None)


class _Connector(aiohttp.TCPConnector):
    """aiohttp's connector, telling the send under way whether its connection is one it
    handed out before (a kept-alive one from the pool) or a new one."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._handed_out: weakref.WeakSet[object] = weakref.WeakSet()

    async def connect(  # aiohttp's signature, `timeout` included
        self,
        req: ClientRequest,
        traces: list[Trace],
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109
    ) -> Connection:
        connection = await super().connect(req, traces, timeout)
        protocol = connection.protocol
        if protocol is not None:
            attempt = _attempt.get()
            if attempt is not None and protocol in self._handed_out:
                attempt.reused = True
            self._handed_out.add(protocol)
        return connection


# How a send on a connection the engine already closed fails: the write meets a closed or
# reset socket, or the read meets its end before any answer.
_STALE_FAILURES = (
    aiohttp.ServerDisconnectedError,
    aiohttp.ClientOSError,
    aiohttp.ClientConnectionResetError,
)


def _stale(exc: BaseException, attempt: _Attempt) -> bool:
    """Whether a failed send met a kept-alive connection the engine had closed, so the engine
    never read the request (docs/wire.md, llama-server: it closes right after a streamed
    answer while announcing keep-alive; a proxy's idle timeout does the same). Only on a
    reused connection and only before any byte of an answer: a fresh connection that fails
    says the engine is gone or refused us, and a partly read answer is the engine's."""
    if not attempt.reused or isinstance(exc, aiohttp.ClientConnectorError):
        return False
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        # Its message is the part of an answer read so far when there is one, else text.
        return isinstance(exc.message, str)
    return True


class HTTPClient:
    """A lazily created aiohttp session bound to one engine's base URL."""

    def __init__(
        self,
        base_url: str,
        *,
        backend_id: str,
        headers: Mapping[str, str] | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 600.0,
        secrets: Iterable[str | None] = (),
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # Keys this client sends: an engine that echoes one in an error must not leak it.
        self.secrets = tuple(s for s in secrets if s)
        self.backend_id = backend_id
        self.headers = dict(headers or {})
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._session: aiohttp.ClientSession | None = None
        self._fresh_session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = self._new_session(fresh=False)
        return self._session

    @property
    def fresh_session(self) -> aiohttp.ClientSession:
        """A session that pools nothing: each request on a new connection (the one retry of
        a send that met a closed kept-alive connection; made on the first such retry)."""
        if self._fresh_session is None or self._fresh_session.closed:
            self._fresh_session = self._new_session(fresh=True)
        return self._fresh_session

    def _new_session(self, *, fresh: bool) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            headers=self.headers,
            timeout=aiohttp.ClientTimeout(
                total=None, connect=self.connect_timeout, sock_read=self.read_timeout
            ),
            connector=(aiohttp.TCPConnector if fresh else _Connector)(
                limit=0, ttl_dns_cache=300, force_close=fresh
            ),
        )

    def scrub(self, exc: BackendError) -> BackendError:
        """The same error with our keys taken out of its message and raw body, and this
        engine's address out of its message."""
        return scrub_error(exc, self.secrets, address=self.base_url)

    def claim(self, exc: BackendError) -> BackendError:
        """The same error naming this backend (unless it names one already), scrubbed."""
        exc.backend_id = exc.backend_id or self.backend_id
        return self.scrub(exc)

    async def aclose(self) -> None:
        for session in (self._session, self._fresh_session):
            if session is not None and not session.closed:
                await session.close()
        self._session = self._fresh_session = None

    async def open(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        raw: bytes | None = None,
        decode_error: ErrorDecoder,
        headers: Mapping[str, str] | None = None,
        time_limit: float | None = None,
    ) -> aiohttp.ClientResponse:
        """Send a request and return the open response, or raise the typed error it carried.

        The caller owns the response: read it, then `release()` it (reuse the
        connection) or `close()` it (drop the connection so the engine stops work).
        """
        data = raw if raw is not None else (None if body is None else _json_encode(body))
        send_headers = dict(headers or {})
        if data is not None:
            send_headers.setdefault("Content-Type", "application/json")
        kwargs: dict[str, Any] = {}
        if time_limit is not None:
            kwargs["timeout"] = aiohttp.ClientTimeout(
                total=time_limit, connect=min(time_limit, self.connect_timeout)
            )
        with TransportErrors(Phase.SEND, url=self.base_url, backend_id=self.backend_id):
            response = await self._send(method, self.base_url + path, data, send_headers, kwargs)
        if response.status >= 400:
            try:
                payload = await read_all(response, self.backend_id)
            except BackendError:
                payload = b""  # the status alone still says what went wrong
            finally:
                response.release()
            error = decode_error(
                response.status, payload, backend_id=self.backend_id, headers=response.headers
            )
            raise self.scrub(error)
        return response

    async def _send(
        self,
        method: str,
        url: str,
        data: bytes | None,
        headers: dict[str, str],
        options: dict[str, Any],
    ) -> aiohttp.ClientResponse:
        """The engine's answer up to its headers; a send that met a kept-alive connection the
        engine had closed is sent once more, on a new connection.

        That retry is safe for a POST too: the engine closed the connection before our
        request reached it, so it never read it (llama-server's keep-alive loop has ended when
        it closes; the bytes meet a closed socket), and no byte of an answer had come. The
        same body to the same engine is what the candidate loop would send to the next
        candidate anyway. aiohttp resends only idempotent methods itself (RFC 9112 section
        9.3.1 allows more when the request was "never applied"); Chromium resends any request
        that fails so on a reused socket.
        """
        attempt = _Attempt()
        token = _attempt.set(attempt)
        try:
            return await self.session.request(method, url, data=data, headers=headers, **options)
        except _STALE_FAILURES as exc:
            if not _stale(exc, attempt):
                raise
        finally:
            _attempt.reset(token)
        return await self.fresh_session.request(method, url, data=data, headers=headers, **options)

    async def fetch(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        decode_error: ErrorDecoder,
        time_limit: float | None = None,
    ) -> bytes:
        """A whole request: the body of a 2xx answer, or the typed error."""
        response = await self.open(
            method, path, body=body, decode_error=decode_error, time_limit=time_limit
        )
        try:
            return await read_all(response, self.backend_id)
        finally:
            response.release()

    async def answer(
        self, path: str, body: Any, codec: EngineCodec, decode: Callable[[bytes], T]
    ) -> T:
        """POST `body` and decode the whole answer; an error in it names this backend."""
        raw = await self.fetch("POST", path, body=body, decode_error=codec.decode_error)
        try:
            return decode(raw)
        except BackendError as exc:
            raise self.claim(exc) from None

    async def stream_events(self, path: str, body: Any, codec: EngineCodec) -> AsyncIterator[Event]:
        """POST `body` and read the answer as a stream of events in `codec`'s dialect.

        The connection is reused when the stream ended well and dropped when it did not (an
        abandoned stream must stop the engine's work); errors name the backend and carry
        none of our keys."""
        response = await self.open("POST", path, body=body, decode_error=codec.decode_error)
        framed = Framed.of(codec, self.backend_id)
        completed = False
        try:
            async for chunk in iter_body(response, self.backend_id):
                for event in framed.feed(chunk):
                    yield event
            for event in framed.close():
                yield event
            completed = True
        except BackendError as exc:
            raise self.claim(exc) from None
        finally:
            if completed:
                response.release()
            else:
                response.close()

    async def check_health(self, path: str, codec: EngineCodec) -> BackendHealth:
        """GET an engine's health route: ready on a 2xx, alive but not ready on any other
        answer (the engine's error says why, e.g. a model still loading)."""
        try:
            status, body, latency = await self.probe(path)
        except BackendError as exc:
            return unhealthy(self.scrub(exc))
        if 200 <= status < 300:
            return BackendHealth(alive=True, ready=True, latency_ms=latency)
        # The answer is the engine's text: it may quote the key we sent (status pages do).
        error = self.scrub(codec.decode_error(status, body, backend_id=self.backend_id))
        return BackendHealth(alive=True, ready=False, latency_ms=latency, last_error=error.message)

    async def probe(self, path: str, *, time_limit: float = 3.0) -> tuple[int, bytes, float]:
        """GET `path` for health checks: (status, body, latency_ms); raises Unreachable/TimedOut."""
        started = time.perf_counter()
        with TransportErrors(Phase.PROBE, url=self.base_url + path, backend_id=None):
            async with self.session.get(
                self.base_url + path, timeout=aiohttp.ClientTimeout(total=time_limit)
            ) as response:
                body = await response.read()
                return response.status, body, (time.perf_counter() - started) * 1000


def unhealthy(exc: BackendError) -> BackendHealth:
    """A failed health check: the engine is alive unless it could not be reached in time."""
    alive = not isinstance(exc, Unreachable | TimedOut)
    return BackendHealth(alive=alive, ready=False, last_error=exc.message)


async def health_of(call: Callable[[], Awaitable[object]]) -> BackendHealth:
    """Ready when `call` succeeds: the health check of an engine without a health route,
    whose model list is the probe."""
    started = time.perf_counter()
    try:
        await call()
    except BackendError as exc:
        return unhealthy(exc)
    latency = (time.perf_counter() - started) * 1000
    return BackendHealth(alive=True, ready=True, latency_ms=latency)


async def read_all(
    response: aiohttp.ClientResponse, backend_id: str, phase: Phase = Phase.READ
) -> bytes:
    """A whole body, up to the body cap: over it, ProtocolError (the caller closes the
    connection, which an unread body does not return to the pool)."""
    limit = body_limits().body_bytes
    length = response.content_length
    if length is not None:
        if length > limit:
            raise body_too_large(limit)
        with TransportErrors(phase, url=response.url, backend_id=backend_id):
            return await response.read()  # one call: the hot path's whole answers
    parts: list[bytes] = []
    size = 0
    with TransportErrors(phase, url=response.url, backend_id=backend_id):
        async for chunk in response.content.iter_any():
            size += len(chunk)
            if size > limit:
                raise body_too_large(limit)
            parts.append(chunk)
    return b"".join(parts)


async def iter_body(response: aiohttp.ClientResponse, backend_id: str) -> AsyncIterator[bytes]:
    """The response body chunk by chunk as it arrives, with transport failures typed."""
    with TransportErrors(Phase.STREAM, url=response.url, backend_id=backend_id):
        async for chunk in response.content.iter_any():
            yield chunk


class Framed:
    """Bytes -> frames -> canonical events: a dialect's framer glued to its stream decoder.

    Every stream decoder takes the same `Frame`, so this glue knows no dialect."""

    def __init__(self, framer: Framer, decoder: StreamDecoder) -> None:
        self.framer = framer
        self.decoder = decoder

    @classmethod
    def of(cls, codec: EngineCodec, backend_id: str | None) -> Framed:
        """`codec`'s framer and stream decoder, the framer held to the frame cap."""
        framer = codec.framer()
        framer.max_frame_bytes = body_limits().frame_bytes
        return cls(framer, codec.stream_decoder(backend_id=backend_id))

    def feed(self, chunk: bytes) -> Iterator[Event]:
        # Event by event: the good events before an error frame in the same read still count.
        for frame in self.framer.feed(chunk):
            yield from self.decoder.feed(frame)

    def close(self) -> Iterator[Event]:
        for frame in self.framer.close():
            yield from self.decoder.feed(frame)
        yield from self.decoder.close()
