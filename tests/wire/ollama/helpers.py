"""Shared by the Ollama codec tests: NDJSON line builders and decoding them."""

from __future__ import annotations

import json
from typing import Any

from modelport.types import Event
from modelport.wire import ollama
from modelport.wire.sse import Frame


def line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


def chunk(content: str = "", thinking: str | None = None, **message: Any) -> bytes:
    body: dict[str, Any] = {"role": "assistant", "content": content, **message}
    if thinking is not None:
        body["thinking"] = thinking
    return line(
        {"model": "m", "created_at": "2025-01-01T00:00:00Z", "message": body, "done": False}
    )


def done(reason: str | None = "stop", prompt: int | None = 11, output: int | None = 4) -> bytes:
    obj: dict[str, Any] = {
        "model": "m",
        "message": {"role": "assistant", "content": ""},
        "done": True,
        "total_duration": 123,
    }
    if reason is not None:
        obj["done_reason"] = reason
    if prompt is not None:
        obj["prompt_eval_count"] = prompt
    if output is not None:
        obj["eval_count"] = output
    return line(obj)


def decode(*lines: bytes) -> list[Event]:
    decoder = ollama.StreamDecoder()
    events = [e for raw in lines for e in decoder.feed(Frame(None, raw.decode()))]
    return events + decoder.close()
