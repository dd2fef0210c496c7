"""A real gateway over protocol fakes on an event loop of its own thread, for synchronous
drivers: hypothesis's @given and schemathesis's test cases run in the test's thread and
talk HTTP to it, as any client would.

    with ThreadedGateway(backends=[("vllm", ["qwen"])]) as served:
        status, headers, body = served.post("/v1/chat/completions", b"...")
        served.fakes["vllm"].requests   # what each engine received
"""

from __future__ import annotations

import asyncio
import http.client
import threading
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

import msgspec

from modelport.gateway.server import Gateway
from tests.fakes import FakeEngine
from tests.gateway_harness import make_config

T = TypeVar("T")


class ThreadedGateway:
    def __init__(self, backends: Sequence[tuple[str, list[str]]]) -> None:
        self.backends = list(backends)
        self.fakes: dict[str, FakeEngine] = {}
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._gateway: Gateway | None = None
        self._local = threading.local()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _start(self) -> None:
        for kind, models in self.backends:
            fake = FakeEngine(kind, models=models)
            await fake.start()
            self.fakes[kind] = fake
        config = make_config(backends=[{"kind": k, "url": f.url} for k, f in self.fakes.items()])
        self._gateway = Gateway(config, env={})
        self.url = await self._gateway.start()

    async def _stop(self) -> None:
        if self._gateway is not None:
            await self._gateway.stop(grace_s=0)
        for fake in self.fakes.values():
            await fake.stop()

    def __enter__(self) -> ThreadedGateway:
        self._thread.start()
        self.run(self._start())
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.run(self._stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()

    def clear(self) -> None:
        for fake in self.fakes.values():
            fake.requests.clear()

    def post(
        self, path: str, body: bytes, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """One request on a kept-alive connection of this thread."""
        host, port = self.url.removeprefix("http://").rsplit(":", 1)
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = http.client.HTTPConnection(host, int(port), timeout=30)
        sent = {"Content-Type": "application/json", **(headers or {})}
        try:
            conn.request("POST", path, body=body, headers=sent)
            response = conn.getresponse()
            data = response.read()
        except (http.client.HTTPException, ConnectionError):
            conn.close()
            self._local.conn = None
            raise
        if response.getheader("Connection", "").lower() == "close":
            conn.close()
            self._local.conn = None
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data


def dumps(value: Any) -> bytes:
    return msgspec.json.encode(value)
