"""Hub: agents that connect to /provider/connect become upstreams of the gateway's router.

One connection per agent (endpoint.py authenticates it, link.py holds it). Its first
`capabilities` frame makes it an upstream named `agent-<8 chars of its id>` (not local:
this machine's engines come first by default), with admission from its
`max_concurrent_total` and no queue (a full agent is passed over at once for the next
candidate rather than kept waiting). Capabilities and heartbeats act at once on the
upstream (its models, limits, readiness), not at the router's next refresh; an agent
silent for `heartbeat_misses` heartbeats is not ready until it speaks again; the upstream
goes with the connection.

A second connection for the same provider replaces the first: usepod-agent reconnects when
its network drops, and the old socket may not have noticed yet; refusing the new one would
lock the agent out until the old one timed out. The old connection's jobs fail (before
their first byte they fall back) and it is closed with 4000 "replaced".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aiohttp import WSMessage, WSMsgType, web

from modelport.config.schema import HubConfig
from modelport.hub.backend import AgentBackend, health_of, models_of
from modelport.hub.endpoint import (
    CLOSE_POLICY,
    Admission,
    FrameRate,
    authenticate,
    socket_for,
)
from modelport.hub.link import MAX_JOB_BUFFER_BYTES, AgentLink, AgentView, job_error
from modelport.router import Limits, Router, Upstream
from modelport.wire.provider import (
    CLOSE_GOING_AWAY,
    DRAIN_DEPLOY,
    HEARTBEAT_INTERVAL_S,
    AgentFrame,
    Capabilities,
    FrameError,
    Heartbeat,
    JobChunk,
    JobDone,
    JobError,
    decode_agent_frame,
)

log = logging.getLogger("modelport.hub")

CLOSE_REPLACED = 4000  # an application code: a newer connection of the same agent took over


class Hub:
    """The agents connected now, and their upstreams in `router`."""

    def __init__(
        self,
        router: Router,
        access: Admission,
        config: HubConfig,
        *,
        deadline_s: float = 600.0,
        heartbeat_interval_s: float = HEARTBEAT_INTERVAL_S,
        ping_s: float | None = HEARTBEAT_INTERVAL_S,
        max_job_buffer_bytes: int = MAX_JOB_BUFFER_BYTES,
    ) -> None:
        """`deadline_s`: a job's deadline (the gateway's request timeout);
        `heartbeat_interval_s`: what the agents send at (usepod's 15 s; tests set less);
        `ping_s`: how often the hub Pings each socket (None: never)."""
        self.router = router
        self.access = access
        self.config = config
        self.deadline_s = deadline_s
        self.heartbeat_interval_s = heartbeat_interval_s
        self.ping_s = ping_s
        self.max_job_buffer_bytes = max_job_buffer_bytes
        self._links: dict[str, AgentLink] = {}
        self._routed: dict[AgentLink, Upstream] = {}
        self._draining = False
        self._watch: asyncio.Task[None] | None = None

    def agents(self) -> list[AgentView]:
        return [link.view() for link in self._links.values()]

    # -- one connection -----------------------------------------------------------------

    async def connect(self, request: web.Request) -> web.WebSocketResponse:
        """GET /provider/connect: the handshake, then the agent's frames until it goes."""
        ws = socket_for(self.config, ping_s=self.ping_s)
        await ws.prepare(request)
        if self._draining:
            await ws.close(code=CLOSE_GOING_AWAY, message=DRAIN_DEPLOY.encode())
            return ws
        self._start_watch()
        rate = FrameRate(self.config.max_frames_per_s)
        address = request.remote or ""
        agent = await authenticate(ws, self.access, self.config, rate, address)
        if agent is None:
            return ws
        if self._draining:  # the drain began during the handshake
            await ws.close(code=CLOSE_GOING_AWAY, message=DRAIN_DEPLOY.encode())
            return ws
        link = AgentLink(
            ws,
            provider_id=agent.provider_id,
            pubkey=agent.auth.pubkey,
            agent_version=agent.auth.agent_version,
            address=address,
            max_job_buffer_bytes=self.max_job_buffer_bytes,
        )
        await self._register(link)
        log.info("agent %s connected from %s (%s)", link.upstream, address, link.agent_version)
        try:
            await self._read(link, rate)
        finally:
            await self._unregister(link)
        return ws

    async def _register(self, link: AgentLink) -> None:
        old = self._links.get(link.provider_id)
        self._links[link.provider_id] = link
        if old is None:
            return
        log.warning("agent %s connected again: the older connection is closed", link.upstream)
        old.dropped("was replaced by a newer connection")
        await self._unroute(old)
        await old.ws.close(code=CLOSE_REPLACED, message=b"replaced by a newer connection")

    async def _unregister(self, link: AgentLink) -> None:
        code = link.ws.close_code
        link.dropped(f"disconnected (close code {code})")
        if self._links.get(link.provider_id) is link:
            del self._links[link.provider_id]
        await self._unroute(link)
        log.info("agent %s gone (close code %s)", link.upstream, code)

    async def _read(self, link: AgentLink, rate: FrameRate) -> None:
        ws = link.ws
        async for msg in ws:
            if msg.type is WSMsgType.ERROR:  # too big: aiohttp has closed with 1009
                log.warning("agent %s: %s", link.upstream, msg.data)
                break
            frame = _decoded(link, msg)
            # The limit counts what the hub did not ask for: a running job's frames come as
            # fast as its engine writes and are bounded by its buffer (link.py).
            if not _answers_a_job(link, frame) and not rate.allow():
                log.warning(
                    "agent %s sent over %d frames a second: closed",
                    link.upstream,
                    rate.per_s,
                )
                await ws.close(code=CLOSE_POLICY, message=b"frame rate limit")
                break
            if frame is not None:
                self._on_frame(link, frame)

    def _on_frame(self, link: AgentLink, frame: AgentFrame | None) -> None:
        if isinstance(frame, JobChunk):
            job = link.jobs.get(frame.job_id)
            if job is not None:  # a cancelled job's late chunks are dropped
                job.feed(frame.data)
        elif isinstance(frame, JobDone):
            job = link.jobs.get(frame.job_id)
            if job is not None:
                job.finish(frame)
        elif isinstance(frame, JobError):
            job = link.jobs.get(frame.job_id)
            if job is not None:
                job.fail(job_error(frame, link.upstream))
        elif isinstance(frame, Heartbeat):
            link.heartbeat = frame
            link.heartbeat_at = link.seen_at = time.monotonic()
            self._set_ready(link, link.capabilities is not None)
        elif isinstance(frame, Capabilities):
            link.capabilities = frame
            link.seen_at = time.monotonic()
            self._set_ready(link, True)
            self._route(link)
        # auth_response again, or a type we do not know: ignored, as usepod does

    # -- the link's upstream ----------------------------------------------------------

    def _route(self, link: AgentLink) -> None:
        """Add the agent's upstream, or apply its new capabilities to it, now."""
        upstream = self._routed.get(link)
        caps = link.capabilities
        if link.closed or caps is None:
            return
        if upstream is None:
            backend = AgentBackend(link, deadline_s=self.deadline_s)
            limits = Limits(max_concurrent=_total(caps), max_queue=0)
            upstream = self.router.add(backend, limits, name=link.upstream, local=False)
            self._routed[link] = upstream
        self._sync(link, upstream)

    def _sync(self, link: AgentLink, upstream: Upstream) -> None:
        backend = upstream.backend
        if isinstance(backend, AgentBackend):
            backend.sync()
        if link.capabilities is not None:
            upstream.admission.max_concurrent = _total(link.capabilities)
        upstream.models = {m.id: upstream.described(m) for m in models_of(link)}
        upstream.health = health_of(link)
        if self.router.on_refresh is not None:
            self.router.on_refresh(upstream)

    def _set_ready(self, link: AgentLink, ready: bool) -> None:
        ready = ready and link.accepting and not link.closed
        if link.ready == ready:
            return
        link.ready = ready
        upstream = self._routed.get(link)
        if upstream is not None:
            self._sync(link, upstream)

    async def _unroute(self, link: AgentLink) -> None:
        upstream = self._routed.pop(link, None)
        if upstream is not None and self.router.by_name(upstream.name) is upstream:
            await self.router.remove(upstream.name)

    # -- heartbeats -------------------------------------------------------------------

    def _start_watch(self) -> None:
        if self._watch is None or self._watch.done():
            self._watch = asyncio.create_task(self._watch_heartbeats(), name="modelport-hub-watch")

    async def _watch_heartbeats(self) -> None:
        """An agent silent for `heartbeat_misses` intervals is not ready (until it speaks);
        a revoked one is closed."""
        silence = self.config.heartbeat_misses * self.heartbeat_interval_s
        period = min(max(self.heartbeat_interval_s / 4, 0.02), 1.0)
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            for link in list(self._links.values()):
                try:
                    await self._watch_one(link, now, silence)
                except Exception:  # one agent's trouble must not end every agent's watch
                    log.exception("heartbeat watch: checking agent %s failed", link.upstream)

    async def _watch_one(self, link: AgentLink, now: float, silence: float) -> None:
        if link.ready and now - link.seen_at > silence:
            log.warning("agent %s missed its heartbeats: not ready", link.upstream)
            self._set_ready(link, False)
        if not link.closed and self.access.revoked(link.pubkey):
            # `modelport hub revoke` wrote the agents file: the agent goes now, and its
            # reconnect is refused ("revoked key").
            log.warning("agent %s was revoked: closing its connection", link.upstream)
            await _close(link, CLOSE_POLICY, "revoked key")

    # -- drain and close ----------------------------------------------------------------

    async def drain(self, timeout_s: float) -> None:
        """A planned restart: no new jobs, in-flight ones run up to `timeout_s`, then every
        agent gets Close 1001 "drain:deploy" (it reconnects by itself)."""
        self._draining = True
        links = list(self._links.values())
        for link in links:
            link.accepting = False
            self._set_ready(link, False)
            upstream = self._routed.get(link)
            if upstream is not None:
                self._sync(link, upstream)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, timeout_s)):
                await asyncio.gather(*(link.idle.wait() for link in links))
        await asyncio.gather(
            *(_close(link, CLOSE_GOING_AWAY, DRAIN_DEPLOY) for link in links),
            return_exceptions=True,
        )

    async def aclose(self) -> None:
        """Drop every agent now (drain first for a gentle stop) and stop watching."""
        if not self._draining:
            await self.drain(0)
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None
        for link in list(self._links.values()):
            link.dropped("was closed by the hub")
            await self._unroute(link)


def _decoded(link: AgentLink, msg: WSMessage) -> AgentFrame | None:
    """The frame in a message; None for a type we do not know, a malformed frame (logged)
    or a message that is no frame (Ping, Pong, Close)."""
    if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
        return None
    try:
        return decode_agent_frame(msg.data)
    except FrameError as exc:
        log.warning("agent %s: %s (ignored)", link.upstream, exc)
        return None


def _answers_a_job(link: AgentLink, frame: AgentFrame | None) -> bool:
    return isinstance(frame, JobChunk | JobDone | JobError) and frame.job_id in link.jobs


async def _close(link: AgentLink, code: int, reason: str) -> None:
    if not link.ws.closed:
        await link.ws.close(code=code, message=reason.encode())


def _total(caps: Capabilities) -> int:
    return max(1, caps.limits.max_concurrent_total)
