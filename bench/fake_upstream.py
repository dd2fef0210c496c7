"""The fake upstream of the gateway benchmark: answers at once, in both formats.

aiohttp on a free port of 127.0.0.1 (printed on stdout), OpenAI chat-completions and Anthropic
messages, whole or streamed as exactly 100 content chunks (OpenAI: then a finish chunk, a usage
chunk and [DONE]; Anthropic: 100 text deltas between the usual start and stop events). The
`idle` models stream one chunk, then wait for POST /release (at most IDLE_CAP_S); the `slow`
models (bench/soak.py) pause SLOW_CHUNK_S between chunks, so a stream lasts about a second.
Legacy /v1/completions streams the same 100 chunks as text_completion frames.

Run as a script (`python bench/fake_upstream.py`); it serves until killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from aiohttp import web

HOST = "127.0.0.1"
CHUNKS = 100

# Model names on the fake; the modelport backends are restricted to one each.
PASS_MODEL = "bench-pass"  # vllm backend: passthrough for both formats
TRANS_MODEL = "bench-trans"  # localai backend: OpenAI only
ANTH_MODEL = "bench-anth"  # anthropic backend: Anthropic only
IDLE_MODEL = "bench-idle"  # streams one chunk, then waits for /release (at most IDLE_CAP_S)
IDLE_TRANS_MODEL = "bench-idle-trans"
SLOW_MODEL = "bench-slow"  # vllm backend (soak): pauses between chunks
SLOW_TRANS_MODEL = "bench-slow-trans"  # localai backend (soak): the same, transcoded
FAKE_MODELS = (
    PASS_MODEL,
    TRANS_MODEL,
    ANTH_MODEL,
    IDLE_MODEL,
    IDLE_TRANS_MODEL,
    SLOW_MODEL,
    SLOW_TRANS_MODEL,
)
IDLE_CAP_S = 30.0
SLOW_CHUNK_S = 0.01

TOKENS = [f" tok{i}" for i in range(CHUNKS)]
TEXT = "".join(TOKENS)


def _sse(obj: dict[str, Any], event: str | None = None) -> bytes:
    data = json.dumps(obj, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {data}\n\n".encode()


def openai_frames(model: str) -> list[bytes]:
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1, "model": model}
    frames = []
    for i, token in enumerate(TOKENS):
        delta = {"role": "assistant", "content": token} if i == 0 else {"content": token}
        choice = {"index": 0, "delta": delta, "finish_reason": None}
        frames.append(_sse({**base, "choices": [choice]}))
    finish = {"index": 0, "delta": {}, "finish_reason": "stop"}
    frames.append(_sse({**base, "choices": [finish]}))
    usage = {"prompt_tokens": 12, "completion_tokens": CHUNKS, "total_tokens": 12 + CHUNKS}
    frames.append(_sse({**base, "choices": [], "usage": usage}))
    frames.append(b"data: [DONE]\n\n")
    return frames


def openai_whole(model: str) -> bytes:
    body = {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": TEXT},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": CHUNKS, "total_tokens": 12 + CHUNKS},
    }
    return json.dumps(body, separators=(",", ":")).encode()


def anthropic_frames(model: str) -> list[bytes]:
    def ev(obj: dict[str, Any]) -> bytes:
        return _sse(obj, event=obj["type"])

    message: dict[str, Any] = {
        "id": "msg_bench",
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": model,
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 0},
    }
    frames = [
        ev({"type": "message_start", "message": message}),
        ev(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            }
        ),
    ]
    for token in TOKENS:
        delta = {"type": "text_delta", "text": token}
        frames.append(ev({"type": "content_block_delta", "index": 0, "delta": delta}))
    frames.append(ev({"type": "content_block_stop", "index": 0}))
    frames.append(
        ev(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": CHUNKS},
            }
        )
    )
    frames.append(ev({"type": "message_stop"}))
    return frames


def anthropic_whole(model: str) -> bytes:
    body = {
        "id": "msg_bench",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": TEXT}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": CHUNKS},
    }
    return json.dumps(body, separators=(",", ":")).encode()


def completions_frames(model: str) -> list[bytes]:
    """OpenAI's legacy completions stream: text_completion chunks, a finish, [DONE]."""
    base = {"id": "cmpl-bench", "object": "text_completion", "created": 1, "model": model}
    frames = [
        _sse({**base, "choices": [{"index": 0, "text": t, "finish_reason": None}]}) for t in TOKENS
    ]
    frames.append(_sse({**base, "choices": [{"index": 0, "text": "", "finish_reason": "stop"}]}))
    frames.append(b"data: [DONE]\n\n")
    return frames


def completions_whole(model: str) -> bytes:
    choice = {"index": 0, "text": TEXT, "finish_reason": "stop"}
    usage = {"prompt_tokens": 12, "completion_tokens": CHUNKS, "total_tokens": 12 + CHUNKS}
    body = {"id": "cmpl-bench", "object": "text_completion", "created": 1, "model": model}
    return json.dumps({**body, "choices": [choice], "usage": usage}).encode()


BUILDERS = {
    "openai": (openai_whole, openai_frames),
    "anthropic": (anthropic_whole, anthropic_frames),
    "completions": (completions_whole, completions_frames),
}


class Fake:
    """The fake's state: each answer built once per (format, model), and the event that
    releases the idle streams."""

    def __init__(self) -> None:
        self.whole: dict[tuple[str, str], bytes] = {}
        self.frames: dict[tuple[str, str], list[bytes]] = {}
        self.release = asyncio.Event()

    def cached(self, fmt: str, model: str) -> tuple[bytes, list[bytes]]:
        key = (fmt, model)
        if key not in self.whole:
            build_whole, build_frames = BUILDERS[fmt]
            self.whole[key], self.frames[key] = build_whole(model), build_frames(model)
        return self.whole[key], self.frames[key]

    async def answer(self, request: web.Request, fmt: str) -> web.StreamResponse:
        payload = json.loads(await request.read())
        model = str(payload.get("model", ""))
        body, frames = self.cached(fmt, model)
        if payload.get("stream") is not True:
            return web.Response(body=body, content_type="application/json")
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        rest = frames
        if "idle" in model:
            await response.write(frames[0])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.release.wait(), IDLE_CAP_S)
            rest = frames[1:]
        pause = SLOW_CHUNK_S if "slow" in model else 0.0
        for frame in rest:
            if pause:
                await asyncio.sleep(pause)
            await response.write(frame)
        await response.write_eof()
        return response

    async def chat(self, request: web.Request) -> web.StreamResponse:
        return await self.answer(request, "openai")

    async def messages(self, request: web.Request) -> web.StreamResponse:
        return await self.answer(request, "anthropic")

    async def completions(self, request: web.Request) -> web.StreamResponse:
        return await self.answer(request, "completions")

    async def models(self, request: web.Request) -> web.StreamResponse:
        data = [
            {"id": m, "object": "model", "owned_by": "bench", "max_model_len": 4096}
            for m in FAKE_MODELS
        ]
        return web.json_response({"object": "list", "data": data, "has_more": False})

    async def ok(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"status": "ok"})

    async def release_idle(self, request: web.Request) -> web.StreamResponse:
        self.release.set()
        self.release = asyncio.Event()
        return web.json_response({"released": True})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/messages", self.messages)
        app.router.add_post("/v1/completions", self.completions)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/health", self.ok)
        app.router.add_get("/readyz", self.ok)
        app.router.add_post("/release", self.release_idle)
        return app


async def serve() -> None:
    runner = web.AppRunner(Fake().app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0, backlog=4096)
    await site.start()
    print(runner.addresses[0][1], flush=True)
    await asyncio.Event().wait()


def run_fake_upstream() -> None:
    """Serve the fake on a free port; print the port on stdout; run until killed."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    run_fake_upstream()
