"""How light is `import modelport`, and what does the canonical path cost per chunk?

Run: .venv/bin/python bench/decode.py
Prints the import time of `modelport` (fresh interpreter, best of 5) and the decode cost
per stream chunk for the OpenAI and Anthropic codecs, framing included, measured on
streams shaped like the real llama-server captures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

IMPORT_BUDGET_MS = 100.0


def import_ms(statement: str = "import modelport") -> float:
    """Best of five fresh interpreters, timing only `statement`."""
    code = f"import time; t=time.perf_counter(); {statement}; print(time.perf_counter()-t)"
    runs = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(5)
    ]
    return min(runs) * 1000


def openai_stream(chunks: int) -> bytes:
    frames = []
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    for i in range(chunks):
        delta = {"content": f" token{i}"}
        frames.append({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
    frames.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    frames.append(
        {**base, "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": chunks}}
    )
    body = b"".join(b"data: " + json.dumps(f).encode() + b"\n\n" for f in frames)
    return body + b"data: [DONE]\n\n"


def anthropic_stream(chunks: int) -> bytes:
    def frame(name: str, data: dict[str, object]) -> bytes:
        return f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n".encode()

    out = [
        frame(
            "message_start",
            {
                "message": {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "model": "m",
                    "content": [],
                    "usage": {"input_tokens": 5, "output_tokens": 0},
                }
            },
        ),
        frame("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
    ]
    for i in range(chunks):
        out.append(
            frame(
                "content_block_delta",
                {"index": 0, "delta": {"type": "text_delta", "text": f" token{i}"}},
            )
        )
    out += [
        frame("content_block_stop", {"index": 0}),
        frame(
            "message_delta",
            {"delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": chunks}},
        ),
        frame("message_stop", {}),
    ]
    return b"".join(out)


def per_chunk_us(decode: object, body: bytes, chunks: int, rounds: int = 50) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        decode(body)  # type: ignore[operator]
        best = min(best, time.perf_counter() - started)
    return best / chunks * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--import-only", action="store_true")
    args = parser.parse_args()
    ms = import_ms()
    print(f"import modelport: {ms:.1f} ms (budget {IMPORT_BUDGET_MS:.0f} ms)")
    if ms > IMPORT_BUDGET_MS:
        sys.exit(f"import modelport takes {ms:.1f} ms, over the {IMPORT_BUDGET_MS:.0f} ms budget")
    if args.import_only:
        return
    backend_ms = import_ms("from modelport import OpenAICompatBackend")
    print(f"import modelport + a backend (aiohttp): {backend_ms:.1f} ms")
    from modelport.wire import anthropic, openai

    n = 1000
    o = per_chunk_us(openai.decode_stream, openai_stream(n), n)
    a = per_chunk_us(anthropic.decode_stream, anthropic_stream(n), n)
    print(f"openai decode_stream:    {o:.2f} us per chunk (SSE framing included)")
    print(f"anthropic decode_stream: {a:.2f} us per chunk (SSE framing included)")


if __name__ == "__main__":
    main()
