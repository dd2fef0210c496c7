"""The gateway's client connections: time limits on reading a request, a cap on how many.

aiohttp closes an idle keep-alive connection (`keepalive_timeout`) and bounds the size of
a request head (`max_line_size`, `max_field_size`), but it does not bound the time a client
takes to send its head or its body: a client trickling a byte a second holds a connection,
a task and a file for ever (slowloris). Two pieces close that, as nginx does:

- `GuardedHandler`, aiohttp's own protocol with one timer per connection: a request head
  must arrive whole within `header_timeout_s` of its first byte (of the connection's
  opening, for the first request: nginx's client_header_timeout), and its body within
  `body_timeout_s` of the head's end. Once the body is in, nothing here times the
  connection: an answer streams for as long as it streams (request_timeout_s bounds it).
  Between requests aiohttp's keep-alive timer takes over. A late client is closed, not
  answered: it sent no request one could answer, and a 408 written while a handler might
  be writing would corrupt its answer.
- `CappedSite`, aiohttp's TCP site with its own accept loop: at `max_connections` open
  connections it stops accepting, so new clients wait in the kernel's listen backlog
  (nginx's worker_connections) and are served as others leave; connections already open,
  keep-alive ones included, are never refused or cut for it.

The hot path pays one Python call per network read and per response, and nothing per
frame written. The handler reads `_messages`, the parsed-request queue aiohttp's own
`data_received` fills, to learn that a head is complete: the one private name used.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.streams import StreamReader
from aiohttp.web_request import BaseRequest
from yarl import URL

from modelport.gateway.runner import GatewayRequestHandler

log = logging.getLogger("modelport.gateway")

# Where a connection is in its current request; the timer guards HEAD and BODY only.
_HEAD, _BODY, _BUSY, _IDLE = range(4)


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout_s: float = 60.0
    body_timeout_s: float = 60.0
    keepalive_timeout_s: float = 75.0
    max_connections: int = 1024


class GuardedHandler(GatewayRequestHandler):
    """aiohttp's HTTP/1 protocol with a deadline on reading each request's head and body,
    answering malformed requests without an echo (`GatewayRequestHandler`)."""

    def __init__(
        self,
        manager: web.Server,
        *,
        limits: ConnectionLimits,
        on_lost: Callable[[], None],
        loop: asyncio.AbstractEventLoop,
        **kwargs: Any,
    ) -> None:
        super().__init__(manager, loop=loop, keepalive_timeout=limits.keepalive_timeout_s, **kwargs)
        self._limits = limits
        self._on_lost: Callable[[], None] | None = on_lost
        self._phase = _HEAD
        self._guard: asyncio.TimerHandle | None = None
        self._deadline = 0.0
        self._body: StreamReader | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm(self._limits.header_timeout_s)  # the first request must come in time

    def data_received(self, data: bytes) -> None:
        # A read on an idle kept-alive connection begins its next request (aiohttp calls
        # this with b"" itself when it resumes reading: that begins nothing).
        if self._phase == _IDLE and data:
            self._phase = _HEAD
            self._arm(self._limits.header_timeout_s)
        super().data_received(data)
        if self._phase == _HEAD:
            if self._messages:  # aiohttp parsed a whole head in this read
                payload = self._messages[-1][1]
                if payload.is_eof():
                    self._settle()
                else:
                    self._phase, self._body = _BODY, payload
                    self._arm(self._limits.body_timeout_s)
        elif self._phase == _BODY and self._body is not None and self._body.is_eof():
            self._settle()

    def log_access(
        self, request: BaseRequest, response: web.StreamResponse, time: float | None
    ) -> None:
        # Called once a response is written: the connection is idle until its next request.
        super().log_access(request, response, time)
        self._phase = _IDLE

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._guard is not None:
            self._guard.cancel()
            self._guard = None
        self._body = None
        super().connection_lost(exc)
        on_lost, self._on_lost = self._on_lost, None
        if on_lost is not None:
            on_lost()

    def _settle(self) -> None:
        """The request is in: from here on its answer runs untimed by this handler (a timer
        still pending finds nothing to guard when it fires)."""
        self._phase, self._body = _BUSY, None

    def _arm(self, seconds: float) -> None:
        """Guard the current phase until `seconds` from now. One timer at a time, reused:
        a kept-alive client's next request moves the deadline instead of adding a timer, so
        the cost per request is a clock read, not a timer pushed and cancelled."""
        deadline = self._deadline = self._loop.time() + seconds
        guard = self._guard
        if guard is not None:
            if guard.when() <= deadline:
                return  # it fires first, sees the later deadline and waits for it
            guard.cancel()
        self._guard = self._loop.call_at(deadline, self._expire)

    def _expire(self) -> None:
        self._guard = None
        if self._phase not in (_HEAD, _BODY) or self.transport is None:
            return
        if self._loop.time() < self._deadline:
            self._guard = self._loop.call_at(self._deadline, self._expire)
            return
        what = "head" if self._phase == _HEAD else "body"
        log.debug("closed a connection: its request %s did not arrive in time", what)
        self.force_close()


class CappedSite(web.BaseSite):
    """A TCP site that holds at most `limits.max_connections` client connections at once."""

    __slots__ = ("_accepting", "_handler_args", "_host", "_limits", "_port", "_servers", "_slots")

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        *,
        limits: ConnectionLimits,
        handler_args: dict[str, Any],
        backlog: int = 128,
    ) -> None:
        super().__init__(runner, backlog=backlog)
        self._host = host
        self._port = port
        self._limits = limits
        self._handler_args = handler_args  # what aiohttp's own handlers would be given
        self._slots = asyncio.Semaphore(limits.max_connections)
        self._accepting: list[asyncio.Task[None]] = []
        self._servers: list[asyncio.AbstractServer] = []

    @property
    def name(self) -> str:
        return str(URL.build(scheme="http", host=self._host or "0.0.0.0", port=self._port))

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        for sock in await _listen(loop, self._host, self._port, self._backlog):
            # A server that never serves: it owns the socket so the runner can list and
            # close it; the accept loop below is what takes connections.
            server = await loop.create_server(self._protocol, sock=sock, start_serving=False)
            self._servers.append(server)
            self._accepting.append(asyncio.create_task(self._accept(sock)))
        self._server = self._servers[0]

    async def stop(self) -> None:
        for task in self._accepting:
            task.cancel()
        await asyncio.gather(*self._accepting, return_exceptions=True)
        self._accepting.clear()
        for server in self._servers[1:]:
            server.close()
        self._servers.clear()
        await super().stop()  # closes the first server and unregisters the site

    def _protocol(self) -> GuardedHandler:
        server = self._runner.server
        assert server is not None
        return GuardedHandler(
            server,
            limits=self._limits,
            on_lost=self._slots.release,
            loop=asyncio.get_running_loop(),
            **self._handler_args,
        )

    async def _accept(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._slots.acquire()  # at the cap, the next client waits in the backlog
            try:
                conn, _ = await loop.sock_accept(sock)
            except OSError as exc:  # out of files, aborted handshake: retry, do not spin
                self._slots.release()
                log.warning("accepting a connection failed: %s", exc.strerror or exc)
                await asyncio.sleep(0.1)
                continue
            except BaseException:
                self._slots.release()
                raise
            try:
                await loop.connect_accepted_socket(self._protocol, conn)
            except OSError:
                conn.close()
                self._slots.release()


async def _listen(
    loop: asyncio.AbstractEventLoop, host: str, port: int, backlog: int
) -> list[socket.socket]:
    """Listening sockets for every address `host` names, bound as asyncio's create_server
    binds them (SO_REUSEADDR, IPv6 sockets IPv6-only)."""
    infos = await loop.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )
    sockets: list[socket.socket] = []
    seen: set[tuple[int, Any]] = set()
    try:
        for family, _, _, _, address in infos:
            if (family, address) in seen:
                continue
            seen.add((family, address))
            sock = socket.create_server(address, family=family, backlog=backlog)
            sock.setblocking(False)
            sockets.append(sock)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def fit_open_files(max_connections: int) -> str | None:
    """Raise the soft open-files limit so the cap can be reached: each client connection
    takes a file, and its request another to the engine. A warning when it cannot."""
    needed = 2 * max_connections + 256  # plus the ledger, logs, listeners, engine probes
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return None
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (OSError, ValueError):
        target = soft
    if target >= needed:
        return None
    return (
        f"max_connections {max_connections} needs about {needed} open files; "
        f"the limit is {target} (raise it with `ulimit -n`, or lower max_connections)"
    )
