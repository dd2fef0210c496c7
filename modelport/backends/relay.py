"""HTTPRelay: an engine's response body passed through byte for byte, metered on the way."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Mapping

import aiohttp

from modelport.backends.http import HTTPClient, Phase, body_limits, iter_body, read_all
from modelport.errors import BackendError, Unsupported
from modelport.types import FinishReason, RelayContext, RelayedFormat, Usage
from modelport.wire.codec import RelayCodec, RelayRequest
from modelport.wire.meter import FrameFixup, Meter


async def open_relay(
    http: HTTPClient,
    codec: RelayCodec,
    path: str,
    body: bytes,
    *,
    api_key: str | None,
    context: RelayContext | None = None,
    drops: Mapping[str, str] | None = None,
    fixup: FrameFixup | None = None,
) -> HTTPRelay:
    """Send a client's body in `codec`'s dialect to the engine at `path` and return the open
    relay: `prepare` then `send`. `fixup`, from the engine's profile, rewrites the frames
    its quirks get wrong."""
    request = prepare(http, codec, body, api_key=api_key, context=context, drops=drops)
    return await send(http, codec, path, request, fixup=fixup)


def prepare(
    http: HTTPClient,
    codec: RelayCodec,
    body: bytes,
    *,
    api_key: str | None,
    context: RelayContext | None = None,
    drops: Mapping[str, str] | None = None,
) -> RelayRequest:
    """A client's body made ready, no I/O: the codec says what the body and headers need
    (`prepare_relay`), and what of the client's request (`context`: query string, the
    dialect's own headers) goes along.

    `drops` names the fields this engine is known to drop or refuse on this endpoint, with
    why (its profile's column): a body that sets one is Unsupported here, so the candidate
    loop can try an engine that honours it rather than let it vanish."""
    try:
        request = codec.prepare_relay(body, api_key=api_key, context=context)
        _refuse_dropped(request.fields, drops)
    except BackendError as exc:
        http.claim(exc)
        raise
    return request


async def send(
    http: HTTPClient,
    codec: RelayCodec,
    path: str,
    request: RelayRequest,
    *,
    fixup: FrameFixup | None = None,
) -> HTTPRelay:
    """POST a prepared body to the engine at `path`; the open relay, metered by `codec`."""
    target = f"{path}?{request.query}" if request.query else path
    response = await http.open(
        "POST", target, raw=request.body, headers=request.headers, decode_error=codec.decode_error
    )
    return HTTPRelay(
        response,
        codec.format,
        stream=request.stream,
        backend_id=http.backend_id,
        drop_usage_chunk=request.drop_usage_chunk,
        scrub=http.scrub,
        fixup=fixup,
    )


def _refuse_dropped(fields: frozenset[str], drops: Mapping[str, str] | None) -> None:
    if not drops or not fields:
        return
    for name in sorted(fields.intersection(drops)):
        raise Unsupported(f"`{name}` is not honoured here: {drops[name]}")


class HTTPRelay:
    """Iterate to get the engine's bytes, whole frames at a time; then `usage` and
    `finish_reason` are known.

    An error frame from the engine is not forwarded: iteration stops before it and raises
    the classified error, so the caller can tell the client in the client's own format.
    A stream cut short raises ProtocolError after the last complete frame.
    """

    def __init__(
        self,
        response: aiohttp.ClientResponse,
        format: RelayedFormat,
        *,
        stream: bool,
        backend_id: str,
        drop_usage_chunk: bool = False,
        scrub: Callable[[BackendError], BackendError] = lambda exc: exc,
        fixup: FrameFixup | None = None,
    ) -> None:
        self._response = response
        self._meter = Meter(
            format,
            stream=stream,
            drop_usage_chunk=drop_usage_chunk,
            fixup=fixup,
            max_frame_bytes=body_limits().frame_bytes,
        )
        self._scrub = scrub
        self.backend_id = backend_id
        self.status = response.status
        self.content_type = _media_type(
            response.headers.get("Content-Type", ""),
            "text/event-stream" if stream else "application/json",
        )

    @property
    def usage(self) -> Usage | None:
        return self._meter.usage

    @property
    def finish_reason(self) -> FinishReason | None:
        return self._meter.finish_reason

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if not self._meter.stream:
            yield await self._whole()
            return
        completed = False
        try:
            async for chunk in iter_body(self._response, self.backend_id):
                ready = self._meter.feed(chunk)
                if ready:
                    yield ready
                if self._meter.error is not None:
                    break
            tail = self._meter.close() if self._meter.error is None else b""
            if tail:
                yield tail
            completed = self._meter.error is None
        finally:
            if completed:
                self._response.release()
            else:
                # Dropping the connection is how the engine learns to stop generating.
                self._response.close()
        error = self._meter.outcome()
        if error is not None:
            raise self._claim(error)

    async def _whole(self) -> bytes:
        """A whole answer: one read, no chunk loop (the meter keeps it until the end anyway)."""
        try:
            body = await read_all(self._response, self.backend_id, Phase.STREAM)
        except BackendError as exc:
            self._response.close()
            raise self._claim(exc) from None
        except BaseException:
            self._response.close()
            raise
        self._meter.feed(body)
        body = self._meter.close()
        error = self._meter.outcome()
        if error is not None:
            self._response.close()
            raise self._claim(error)
        self._response.release()
        return body

    def _claim(self, error: BackendError) -> BackendError:
        error.backend_id = error.backend_id or self.backend_id
        return self._scrub(error)

    async def aclose(self) -> None:
        self._response.close()


_MEDIA_TYPE = re.compile(r"[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+")


def _media_type(given: str, default: str) -> str:
    """The engine's media type without its parameters (the only header of an engine's that
    reaches the client: a parameter could carry anything, an echoed key included)."""
    media = given.partition(";")[0].strip().lower()
    return media if _MEDIA_TYPE.fullmatch(media) else default
