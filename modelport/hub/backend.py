"""AgentBackend: an agent on another machine as a Backend of the router.

A request becomes a job on the agent's socket (link.py). A job runs streamed (CONTRACTS.md:
the agent asks its engine for a stream, as usepod-agent's backend/http.rs does), so its
bytes are an SSE stream in the job's format, unless the agent advertises one of modelport's
extensions (wire/provider.py), which only modelport agents do:

- passthrough (`relay`) to a RELAY_JOBS agent (a modelport agent): a client whose dialect
  the agent serves sends its body as a `"relay": true` job; the agent's service runs it as
  a gateway would and its bytes are the client's answer, passed on unread (`RelayedJob`),
  with usage from job_done: the stream is metered once, at the agent, not twice;
- passthrough to any other agent: a streaming client whose dialect the agent serves
  ("openai") gets the job's bytes, metered on the way as an engine's relay is
  (wire/meter.py reassembles an SSE event split across job_chunk frames); a whole
  (non-streaming) request to a WHOLE_JOBS agent is sent as a `"stream": false` job and the
  agent's one JSON body is relayed, metered as an engine's whole answer is;
- transcoding (`stream`, `chat`): any other request (Responses, Ollama, ...) is encoded as
  an OpenAI body, run as a streamed job, and decoded back into canonical events; a whole
  one to a WHOLE_JOBS agent runs as a whole OpenAI job, its body decoded as an engine's.

A relay or stream closed before its job ended (the client left, or the first-byte limit
fell back) sends job_cancel; one that ended never does.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import msgspec

from modelport.backends.http import Framed, body_limits
from modelport.errors import BackendError, ProtocolError, Unsupported
from modelport.hub.link import AgentLink, JobStream
from modelport.types import (
    BackendHealth,
    BackendModel,
    Capabilities,
    ChatRequest,
    ChatResponse,
    Done,
    EmbedRequest,
    EmbedResult,
    Event,
    FinishReason,
    RelayContext,
    RelayedFormat,
    Usage,
    WireFormat,
    collect,
)
from modelport.wire import anthropic, openai, relay_codec_for
from modelport.wire.fields import Target
from modelport.wire.meter import Meter, WholeFrames
from modelport.wire.openai.models import AGENT_ENTRY
from modelport.wire.provider import JOB_FORMATS, RELAY_JOBS, WHOLE_JOBS, JobDone
from modelport.wire.validate import relay_body


class _Model(msgspec.Struct):
    model: str = ""


_model_of = msgspec.json.Decoder(_Model)


class AgentBackend:
    """One agent's engines, as the router sees them: its models, readiness and jobs."""

    kind = "agent"
    url: str | None = None

    def __init__(self, link: AgentLink, *, deadline_s: float) -> None:
        """`deadline_s`: a job's `deadline_ms` (the gateway's request timeout)."""
        self.link = link
        self.id = f"agent:{link.provider_id}"
        self.deadline_s = deadline_s
        self.transcodes_to = Target.OPENAI
        self.formats: frozenset[RelayedFormat] = frozenset()
        self.whole_jobs = False
        self.relay_jobs = False
        self.sync()

    def sync(self) -> None:
        """Take up what the agent's last capabilities say it serves."""
        self.formats = frozenset(JOB_FORMATS[f] for f in self.link.formats if f in JOB_FORMATS)
        self.whole_jobs = WHOLE_JOBS in self.link.features
        self.relay_jobs = RELAY_JOBS in self.link.features

    def __repr__(self) -> str:
        return f"AgentBackend({self.id!r})"

    # -- what the router reads ----------------------------------------------------------

    async def list_models(self) -> list[BackendModel]:
        return models_of(self.link)

    async def health(self) -> BackendHealth:
        return health_of(self.link)

    # -- jobs ---------------------------------------------------------------------------

    def relays(self, format: RelayedFormat, request: ChatRequest) -> bool:
        """Requests in a format the agent serves pass through: streams always, whole
        answers when the agent serves whole or relay jobs (else they are collected from a
        streamed job by transcoding)."""
        return format in self.formats and (request.stream or self.whole_jobs or self.relay_jobs)

    async def relay(
        self, format: RelayedFormat, body: bytes, context: RelayContext | None = None
    ) -> AgentRelay | RelayedJob:
        if format not in self.formats:
            raise Unsupported(f"agent {self.link.upstream} does not serve {format} jobs")
        if self.relay_jobs:
            # The client's body as it came (the query string and dialect headers of
            # `context` reach no agent, relay job or not: the job frame has no room).
            payload = relay_body(body)  # validated by the candidate loop: parsed, not walked
            job = await self._start(str(payload["model"]), body, _job_format(format), relay=True)
            return RelayedJob(job, format, self.id, stream=payload.get("stream") is True)
        codec = relay_codec_for(format)
        prepared = codec.prepare_relay(body, context=context)
        if not prepared.stream and not self.whole_jobs:  # `relays` sends these elsewhere
            raise Unsupported(f"agent {self.link.upstream} serves streamed jobs only")
        model = _model_of.decode(prepared.body).model
        job = await self._start(model, prepared.body, _job_format(format), stream=prepared.stream)
        return AgentRelay(
            job,
            format,
            self.id,
            drop_usage_chunk=prepared.drop_usage_chunk,
            stream=prepared.stream,
        )

    async def stream(self, request: ChatRequest) -> AsyncGenerator[Event, None]:
        format, body = self._job_body(request)
        framed = Framed.of(relay_codec_for(format), self.id)
        job = await self._start(request.model, msgspec.json.encode(body), _job_format(format))
        # The answer's last event waits for the job's end (job_done comes a moment after
        # the last chunk): a client that leaves as soon as it has its answer (Codex does)
        # would otherwise cut the job short, and it would be recorded as cancelled.
        last: list[Event] = []
        try:
            while (data := await job.next()) is not None:
                for event in framed.feed(data):
                    if isinstance(event, Done) or last:
                        last.append(event)
                    else:
                        yield event
            for event in (*last, *framed.close()):
                yield event
        except BackendError as exc:
            exc.backend_id = exc.backend_id or self.id
            raise
        finally:
            await job.cancel()  # nothing once the job has ended

    async def chat(self, request: ChatRequest) -> ChatResponse:
        if self.whole_jobs and WireFormat.OPENAI in self.formats:
            return await self._whole_chat(request)
        # Closed explicitly: a chat cancelled half way cancels its job now, not at GC.
        async with contextlib.aclosing(self.stream(request)) as stream:
            events = [event async for event in stream]
        # The canonical events carry no answer id to keep: mint one, as Ollama's stream
        # decoder does (an empty "id" was what a client got).
        return collect(events, id=f"chatcmpl-{uuid.uuid4().hex[:24]}", model=request.model)

    async def _whole_chat(self, request: ChatRequest) -> ChatResponse:
        """A whole answer as a whole OpenAI job: one JSON body, decoded as an engine's."""
        body = openai.encode_request(msgspec.structs.replace(request, stream=False))
        body["stream"] = False
        body.pop("stream_options", None)
        job = await self._start(request.model, msgspec.json.encode(body), "openai", stream=False)
        parts: list[bytes] = []
        try:
            while (data := await job.next()) is not None:
                parts.append(data)
            response = openai.decode_response(b"".join(parts))
        except BackendError as exc:
            exc.backend_id = exc.backend_id or self.id
            raise
        finally:
            await job.cancel()  # nothing once the job has ended
        if response.usage is None and job.done is not None:
            response = msgspec.structs.replace(response, usage=_job_usage(job.done))
        return response

    def _job_body(self, request: ChatRequest) -> tuple[WireFormat, dict[str, Any]]:
        """The request as a streamed job body: OpenAI's, which every agent serves (an agent
        that lists only "anthropic" gets Anthropic's)."""
        if WireFormat.OPENAI in self.formats or not self.formats:
            body = openai.encode_request(msgspec.structs.replace(request, stream=True))
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
            return WireFormat.OPENAI, body
        body = anthropic.encode_request(request)
        body["stream"] = True
        return WireFormat.ANTHROPIC, body

    async def _start(
        self, model: str, body: bytes, format: str, *, stream: bool = True, relay: bool = False
    ) -> JobStream:
        deadline_ms = max(1, int(self.deadline_s * 1000))
        try:
            return await self.link.start_job(
                model, body, format, deadline_ms, stream=stream, relay=relay
            )
        except BackendError as exc:
            exc.backend_id = self.id
            raise

    # -- what an agent does not do ------------------------------------------------------

    async def embed(self, request: EmbedRequest) -> EmbedResult:
        raise Unsupported("agents serve chat jobs only, not embeddings", backend_id=self.id)

    async def count_tokens(self, request: ChatRequest) -> int:
        raise Unsupported("agents cannot count tokens", backend_id=self.id)

    async def aclose(self) -> None:
        return None  # the hub owns the connection


class AgentRelay:
    """A job's bytes, metered as an engine's relay is; usage from job_done when the answer
    carried none (usepod-agent forwards the engine's bytes, whatever they say). A whole job's
    body is held until job_done and then relayed in one piece, as HTTPRelay relays an
    engine's whole answer: a job_error before it still falls back."""

    status = 200

    def __init__(
        self,
        job: JobStream,
        format: RelayedFormat,
        backend_id: str,
        *,
        drop_usage_chunk: bool,
        stream: bool = True,
    ) -> None:
        self._job = job
        self.backend_id = backend_id
        self.content_type = "text/event-stream" if stream else "application/json"
        self._meter = Meter(
            format,
            stream=stream,
            drop_usage_chunk=drop_usage_chunk,
            max_frame_bytes=body_limits().frame_bytes,
        )

    @property
    def usage(self) -> Usage | None:
        if self._meter.usage is not None:
            return self._meter.usage
        done = self._job.done
        return None if done is None else _job_usage(done)

    @property
    def finish_reason(self) -> FinishReason | None:
        return self._meter.finish_reason

    async def __aiter__(self) -> AsyncIterator[bytes]:
        meter, job = self._meter, self._job
        if not meter.stream:
            yield await self._whole()
            return
        held = b""  # the answer's end, sent with the job's end (as in `stream`)
        try:
            while (data := await job.next()) is not None:
                ready = meter.feed(data)
                if meter.finish_reason is not None:
                    held += ready
                elif ready:
                    yield ready
                if meter.error is not None:
                    break
            tail = held + (meter.close() if meter.error is None else b"")
            if tail:
                yield tail
        except BackendError as exc:
            exc.backend_id = exc.backend_id or self.backend_id
            raise
        finally:
            if meter.error is not None:
                await job.cancel()
        error = meter.outcome()
        if error is not None:
            error.backend_id = error.backend_id or self.backend_id
            raise error

    async def _whole(self) -> bytes:
        meter, job = self._meter, self._job
        try:
            while (data := await job.next()) is not None:
                meter.feed(data)
        except BackendError as exc:
            exc.backend_id = exc.backend_id or self.backend_id
            raise
        finally:
            await job.cancel()  # nothing once the job has ended
        body = meter.close()
        error = meter.outcome()
        if error is not None:
            error.backend_id = error.backend_id or self.backend_id
            raise error
        return body

    async def aclose(self) -> None:
        await self._job.cancel()


class RelayedJob:
    """A relay job's bytes: the client's answer as the agent's service made it (metered
    there, a usage-only chunk the client did not ask for already left out), passed on
    without being read; usage from job_done. The agent sends no error frame of its own: a
    job_error (or the agent gone) is raised, and the client gets its error event from the
    hub's StreamBody, as after an engine's failure.

    The client only ever gets whole frames: an agent's chunk ends where a frame ends,
    except for a frame it cut in pieces (one over its 256 KiB chunk), whose start waits here
    for its rest (one `endswith` a chunk finds the common case). So a failure's error event
    never lands in the middle of a frame (the cut start is dropped), and the answer's end
    is found without a parse: the frames holding the dialect's last line (`stream_end`)
    are sent with the job's end, as AgentRelay holds them. A dialect without such a line
    has none held."""

    status = 200
    finish_reason: FinishReason | None = None  # the agent's meter read it; the hub does not

    def __init__(
        self, job: JobStream, format: RelayedFormat, backend_id: str, *, stream: bool
    ) -> None:
        self._job = job
        self.backend_id = backend_id
        self._stream = stream
        codec = relay_codec_for(format)
        self.content_type = codec.stream_content_type if stream else "application/json"
        end = codec.stream_end
        self._end = None if end is None else (end, b"\n" + end)

    @property
    def usage(self) -> Usage | None:
        done = self._job.done
        return None if done is None else _job_usage(done)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        job, end = self._job, self._end
        held: list[bytes] = []
        frames = WholeFrames(body_limits().frame_bytes)
        try:
            while (data := await job.next()) is not None:
                if not self._stream:
                    held.append(data)
                    continue
                data = frames.feed(data)
                if held or (end and data and _holds(data, *end)):
                    held.append(data)
                elif data:
                    yield data
        except BackendError as exc:
            exc.backend_id = exc.backend_id or self.backend_id
            raise
        if held or frames.pending:
            yield b"".join(held) + frames.close()

    async def aclose(self) -> None:
        await self._job.cancel()


def _holds(data: bytes, line: bytes, after_newline: bytes) -> bool:
    """Whether `data` (from a frame's start) holds the line that begins with `line`."""
    return data.startswith(line) or after_newline in data


def _job_usage(done: JobDone) -> Usage:
    tokens = done.tokens
    return Usage(
        input_tokens=tokens.input_tokens or tokens.input,
        output_tokens=tokens.output_tokens or tokens.output,
    )


def _job_format(format: RelayedFormat) -> str:
    for name, wire in JOB_FORMATS.items():
        if wire is format:
            return name
    raise ProtocolError(f"no job format for {format}")


# A capabilities frame says nothing of what a model can do: unknown (None) lets a request
# that needs a capability through to the agent, whose own service checks it against its
# engine's model list (a modelport agent refuses with a 400 in the client's dialect; see
# docs/hub.md). False would refuse every image at the hub. Embeddings are not jobs.
AGENT_MODEL_CAPABILITIES = Capabilities(
    tools=None, vision=None, thinking=None, embeddings=False, json_schema=None
)


def models_of(link: AgentLink) -> list[BackendModel]:
    """The agent's models with their context windows; its prices and id in `native`.

    The prices stand twice: at the top of `native`, where the router reads an upstream's
    advertised price (`router.advertised_price`: the price policy, the ledger's settlement),
    and in the agent entry /v1/models shows."""
    caps = link.capabilities
    if caps is None:
        return []
    return [
        BackendModel(
            id=m.model_id,
            context_window=m.context_window,
            capabilities=AGENT_MODEL_CAPABILITIES,
            loaded=True,
            native={
                "input_per_1m": m.input_per_1m,
                "output_per_1m": m.output_per_1m,
                AGENT_ENTRY: {
                    "provider_id": link.provider_id,
                    "input_per_1m": m.input_per_1m,  # USDC micro-units per million tokens
                    "output_per_1m": m.output_per_1m,
                    "max_concurrent": m.max_concurrent,
                    "engine": m.backend,
                },
            },
        )
        for m in caps.models
    ]


def health_of(link: AgentLink) -> BackendHealth:
    if link.ready:
        return BackendHealth(alive=True, ready=True)
    if link.closed:
        why = "agent disconnected"
    elif not link.accepting:
        why = "the hub is draining"
    elif link.capabilities is None:
        why = "no capabilities yet"
    else:
        why = "agent missed its heartbeats"
    return BackendHealth(alive=not link.closed, ready=False, last_error=why)
