"""Raw HTTP helpers and shared values for the gateway tests (imported, not fixtures)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
from multidict import CIMultiDict
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes import FakeEngine, Reply

HI = [{"role": "user", "content": "hi"}]
WEATHER_OPENAI = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
WEATHER_ANTHROPIC = {
    "name": "get_weather",
    "description": "Weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


async def post(
    url: str,
    path: str,
    body: Any = None,
    *,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, CIMultiDict[str], bytes]:
    raw = data if data is not None else json.dumps(body).encode()
    send = {"Content-Type": "application/json", **(headers or {})}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + path, data=raw, headers=send) as resp,
    ):
        return resp.status, CIMultiDict(resp.headers), await resp.read()


async def get(
    url: str, path: str, headers: dict[str, str] | None = None
) -> tuple[int, CIMultiDict[str], bytes]:
    async with aiohttp.ClientSession() as session, session.get(url + path, headers=headers) as r:
        return r.status, CIMultiDict(r.headers), await r.read()


def sse_frames(body: bytes) -> list[tuple[str | None, str]]:
    """(event, data) for every SSE frame of a whole body."""
    frames: list[tuple[str | None, str]] = []
    for block in body.decode().replace("\r\n", "\n").split("\n\n"):
        event, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        if event is not None or data:
            frames.append((event, "\n".join(data)))
    return frames


def openai_error_frame(body: bytes) -> dict[str, Any]:
    """The body's last frame is an OpenAI error frame and no [DONE] follows it."""
    frames = sse_frames(body)
    assert frames, body
    assert all(data != "[DONE]" for _, data in frames), body
    last = json.loads(frames[-1][1])
    assert set(last) == {"error"}, last
    assert isinstance(last["error"]["message"], str) and last["error"]["message"]
    return last["error"]


def anthropic_error_frame(body: bytes) -> dict[str, Any]:
    """The body's last frame is `event: error` in Anthropic's shape; no message_stop."""
    frames = sse_frames(body)
    assert frames, body
    assert all(event != "message_stop" for event, _ in frames), body
    event, data = frames[-1]
    assert event == "error", body
    payload = json.loads(data)
    assert payload["type"] == "error", payload
    assert isinstance(payload["error"]["type"], str)
    assert isinstance(payload["error"]["message"], str) and payload["error"]["message"]
    return payload["error"]


def backend(kind: str, fake: FakeEngine, **kw: Any) -> dict[str, Any]:
    return {"kind": kind, "url": fake.url, **kw}


def chat_requests(fake: FakeEngine) -> list[Any]:
    return [r for r in fake.requests if r.path.endswith(("/chat/completions", "/messages"))]


SLOW = Reply(text="slow " * 40, chunk_chars=2, delay_s=0.05)  # about five seconds of stream


def chat_path(fmt: str) -> str:
    return "/v1/chat/completions" if fmt == "openai" else "/v1/messages"


def chat_body(fmt: str, *, stream: bool, model: str = "m") -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": HI, "stream": stream}
    if fmt == "anthropic":
        body["max_tokens"] = 100
    return body


def scrape(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def sample(samples: dict[Any, float], name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


async def series_of(url: str, backend: str) -> dict[str, list[float]]:
    """Every sample of `backend` on /metrics, read as a scraper reads it: name -> the
    values of its series (one a label set), so a name listed twice would show."""
    status, _, body = await get(url, "/metrics")
    assert status == 200
    out: dict[str, list[float]] = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            if s.labels.get("backend") == backend and "le" not in s.labels:
                out.setdefault(s.name, []).append(s.value)
    return out


async def eventually_empty(url: str, backend: str, within: float = 3.0) -> bool:
    """Whether /metrics lists no series of `backend` within `within` seconds."""
    for _ in range(int(within / 0.05)):
        if await series_of(url, backend) == {}:
            return True
        await asyncio.sleep(0.05)
    return await series_of(url, backend) == {}
