"""Shared by the tests of the fakes: calling a fake with raw aiohttp and reading its answer."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from tests.fakes import FakeEngine

USER = [{"role": "user", "content": "hi"}]
AV = {"anthropic-version": "2023-06-01"}


class Answer:
    def __init__(self, status: int, headers: Any, raw: bytes) -> None:
        self.status, self.headers, self.raw = status, headers, raw

    @property
    def json(self) -> Any:
        return json.loads(self.raw)

    @property
    def frames(self) -> list[tuple[str | None, str]]:
        """SSE frames as (event, data); comment lines skipped."""
        out: list[tuple[str | None, str]] = []
        for block in self.raw.decode().split("\n\n"):
            event, data = None, []
            for line in block.split("\n"):
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    data.append(line[6:])
            if data:
                out.append((event, "\n".join(data)))
        return out

    @property
    def chunks(self) -> list[dict[str, Any]]:
        """OpenAI-style data frames decoded, [DONE] left out."""
        return [json.loads(d) for _, d in self.frames if d != "[DONE]"]

    @property
    def events(self) -> list[dict[str, Any]]:
        """Anthropic events: the data objects, checked against their event names."""
        out = []
        for event, data in self.frames:
            obj = json.loads(data)
            if event != "error":
                assert obj["type"] == event
            out.append({"event": event, **obj} if event == "error" else obj)
        return out

    @property
    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.raw.decode().splitlines() if line]


async def call(
    fake: FakeEngine,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    **kw: Any,
) -> Answer:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, fake.url + path, json=body, headers=headers, **kw) as r,
    ):
        return Answer(r.status, r.headers, await r.read())


def chat(model: str = "m", stream: bool = True, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": USER, "stream": stream, **extra}


def usage_opts() -> dict[str, Any]:
    return {"stream_options": {"include_usage": True}}


def deltas(answer: Answer) -> list[dict[str, Any]]:
    return [c["choices"][0]["delta"] for c in answer.chunks if c.get("choices")]


def joined(answer: Answer, key: str) -> str:
    return "".join(d.get(key) or "" for d in deltas(answer))


def openai_path(kind: str) -> str:
    return "/api/v1" if kind in ("openrouter", "venice") else "/v1"
