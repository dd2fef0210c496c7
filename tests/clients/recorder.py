"""A recording server for real coding agents: logs every request, answers just enough to go on.

It speaks the three dialects the agents use (Anthropic Messages, OpenAI Responses, OpenAI Chat
Completions), streamed or whole, plus a model list; anything else is logged and answered 404.
Each request becomes one JSON line (method, path, query, headers with secrets redacted, body).

A scripted tool call makes one round trip: when the request offers the tool named by
`Script.tool_name` and its last input is not a tool result, the answer is a call of that tool
with `Script.tool_args` (a `custom` tool gets `tool_args["input"]`); then text again. Optional:
reasoning before the answer (`Script.reasoning`), or refusing everything (`Script.fail_status`).

Run it alone:  python tests/clients/recorder.py --log out.jsonl [--port 0] [--tool-name Bash
--tool-args '{"command": "echo hi"}'] [--reasoning TEXT] [--fail-status 400]
(prints `listening http://127.0.0.1:PORT`).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gzip
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

SECRET_WORDS = ("key", "token", "secret", "authorization", "cookie", "password")
REDACTED = "<redacted>"


@dataclass
class Script:
    """What the recorder answers: text always, a tool call once when asked for."""

    reply_text: str = "hi from the recorder"
    tool_name: str | None = None
    tool_args: dict[str, Any] = field(default_factory=dict)
    model: str = "some-model"
    # Reasoning first (a Responses reasoning item with encrypted_content, an Anthropic thinking
    # block with a signature, Chat's reasoning_content), to capture how agents send it back.
    reasoning: str | None = None
    # Answer every model request with this HTTP status (to see how an agent takes a refusal).
    fail_status: int | None = None


@dataclass
class Recording:
    """The log file and the running count, shared by all handlers of one server."""

    log_path: Path
    script: Script
    started: float = field(default_factory=time.monotonic)
    count: int = 0

    def write(self, entry: dict[str, Any]) -> None:
        self.count += 1
        entry = {"seq": self.count, "t": round(time.monotonic() - self.started, 3), **entry}
        with self.log_path.open("a", encoding="utf-8") as log:
            log.write(json.dumps(entry, ensure_ascii=False) + "\n")


def is_secret(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in SECRET_WORDS)


def redact_headers(headers: Any) -> dict[str, str]:
    # The real key never reaches a capture file: test keys look like real ones in reviews.
    return {k: (REDACTED if is_secret(k) else v) for k, v in headers.items()}


def redact_query(query: Any) -> dict[str, str]:
    return {k: (REDACTED if is_secret(k) else v) for k, v in query.items()}


def decode_body(raw: bytes, encoding: str) -> tuple[Any, str]:
    """The body as JSON when it is JSON, else text, else base64; and how it was read."""
    if encoding == "gzip":
        raw = gzip.decompress(raw)
    elif encoding:
        return base64.b64encode(raw).decode(), f"base64 ({encoding}, not decoded)"
    if not raw:
        return None, "empty"
    try:
        return json.loads(raw), "json"
    except ValueError:
        pass
    try:
        return raw.decode("utf-8"), "text"
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode(), "base64"


def new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:24]}"


def sse(data: dict[str, Any], event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n".encode()


# --- when to call the tool ------------------------------------------------------------------


def tool_list(body: dict[str, Any]) -> list[Any]:
    """The request's tools, plus those Codex sends in `additional_tools` input items."""
    tools = list(body.get("tools") or [])
    items = body.get("input") if isinstance(body.get("input"), list) else []
    for item in items or []:
        if isinstance(item, dict) and item.get("type") == "additional_tools":
            tools.extend(item.get("tools") or [])
    return tools


def declared_tools(body: dict[str, Any]) -> Iterator[tuple[str | None, dict[str, Any]]]:
    """(namespace, tool) for every tool offered, namespace members unwrapped."""
    for tool in tool_list(body):
        if not isinstance(tool, dict):
            continue
        if tool.get("type") == "namespace":
            for member in tool.get("tools") or []:
                if isinstance(member, dict):
                    yield str(tool.get("name")), member
            continue
        function = tool.get("function")
        yield None, function if isinstance(function, dict) else tool


def offered_tools(body: dict[str, Any]) -> set[str]:
    """Tool names a request offers, in any dialect."""
    return {str(tool.get("name")) for _, tool in declared_tools(body)}


def ends_with_tool_result(body: dict[str, Any]) -> bool:
    messages = body.get("messages") or []
    items = body.get("input") if isinstance(body.get("input"), list) else []
    if items:
        last_type = str(items[-1].get("type", ""))
        return last_type.endswith("_output")
    if not messages:
        return False
    last = messages[-1]
    if last.get("role") == "tool":
        return True
    content = last.get("content")
    if isinstance(content, list):
        return any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content)
    return False


def wants_tool_call(script: Script, body: Any) -> bool:
    if not script.tool_name or not isinstance(body, dict):
        return False
    return script.tool_name in offered_tools(body) and not ends_with_tool_result(body)


def find_tool(body: dict[str, Any], name: str) -> tuple[str | None, dict[str, Any]]:
    for namespace, tool in declared_tools(body):
        if tool.get("name") == name:
            return namespace, tool
    return None, {}


# --- Anthropic Messages ---------------------------------------------------------------------


def anthropic_blocks(script: Script, tool: bool) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if script.reasoning:
        signature = base64.b64encode(b"recorder-signature").decode()
        blocks.append({"type": "thinking", "thinking": script.reasoning, "signature": signature})
    if tool:
        tool_use = {"type": "tool_use", "id": new_id("toolu_"), "name": script.tool_name}
        return [*blocks, {**tool_use, "input": script.tool_args}]
    return [*blocks, {"type": "text", "text": script.reply_text}]


def anthropic_message(script: Script, model: str, tool: bool) -> dict[str, Any]:
    return {
        "id": new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": anthropic_blocks(script, tool),
        "stop_reason": "tool_use" if tool else "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 5},
    }


def anthropic_block_deltas(block: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """How a block opens in a stream, and the deltas that fill it."""
    if block["type"] == "text":
        return {"type": "text", "text": ""}, [{"type": "text_delta", "text": block["text"]}]
    if block["type"] == "thinking":
        thinking = {"type": "thinking_delta", "thinking": block["thinking"]}
        signature = {"type": "signature_delta", "signature": block["signature"]}
        return {"type": "thinking", "thinking": "", "signature": ""}, [thinking, signature]
    partial = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
    return {**block, "input": {}}, [partial]


def anthropic_events(message: dict[str, Any]) -> Iterator[bytes]:
    start = {**message, "content": [], "stop_reason": None}
    start["usage"] = {"input_tokens": 12, "output_tokens": 1}
    yield sse({"type": "message_start", "message": start}, "message_start")
    for index, block in enumerate(message["content"]):
        opened, deltas = anthropic_block_deltas(block)
        head = {"type": "content_block_start", "index": index, "content_block": opened}
        yield sse(head, "content_block_start")
        for delta in deltas:
            body = {"type": "content_block_delta", "index": index, "delta": delta}
            yield sse(body, "content_block_delta")
        yield sse({"type": "content_block_stop", "index": index}, "content_block_stop")
    stop = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    done = {"type": "message_delta", "delta": stop, "usage": {"output_tokens": 5}}
    yield sse(done, "message_delta")
    yield sse({"type": "message_stop"}, "message_stop")


# --- OpenAI Responses -----------------------------------------------------------------------


def responses_items(script: Script, body: dict[str, Any], tool: bool) -> list[dict[str, Any]]:
    items = [responses_item(script, body, tool)]
    if script.reasoning:
        summary = [{"type": "summary_text", "text": script.reasoning}]
        encrypted = base64.b64encode(b"recorder-encrypted-reasoning").decode()
        reasoning = {"type": "reasoning", "id": new_id("rs_"), "summary": summary}
        items.insert(0, {**reasoning, "encrypted_content": encrypted, "status": "completed"})
    return items


def responses_item(script: Script, body: dict[str, Any], tool: bool) -> dict[str, Any]:
    if not tool:
        part = {"type": "output_text", "text": script.reply_text, "annotations": []}
        item = {"type": "message", "id": new_id("msg_"), "role": "assistant"}
        return {**item, "status": "completed", "content": [part]}
    namespace, declared = find_tool(body, script.tool_name or "")
    call: dict[str, Any] = {"id": new_id("fc_"), "call_id": new_id("call_")}
    if declared.get("type") == "custom":  # freeform input: the script gives it as {"input": "..."}
        call |= {"type": "custom_tool_call", "name": script.tool_name}
        call["input"] = str(script.tool_args.get("input", ""))
    else:
        call |= {"type": "function_call", "name": script.tool_name}
        call["arguments"] = json.dumps(script.tool_args)
    if namespace:
        call["namespace"] = namespace
    return {**call, "status": "completed"}


def responses_object(body: dict[str, Any], status: str, output: list[Any]) -> dict[str, Any]:
    response: dict[str, Any] = {
        "id": "resp_recorder",
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "model": body.get("model", "some-model"),
        "output": output,
        "parallel_tool_calls": bool(body.get("parallel_tool_calls", True)),
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": [],
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "metadata": {},
        "temperature": None,
        "top_p": None,
        "usage": None,
    }
    if status == "completed":
        response["usage"] = {
            "input_tokens": 12,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": 5,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 17,
        }
    return response


def responses_item_events(item: dict[str, Any], index: int) -> Iterator[dict[str, Any]]:
    """The events between output_item.added and output_item.done for one item."""
    at: dict[str, Any] = {"item_id": item["id"], "output_index": index}
    if item["type"] == "reasoning":
        text = item["summary"][0]["text"]
        at["summary_index"] = 0
        no_summary = {"type": "summary_text", "text": ""}
        yield {"type": "response.reasoning_summary_part.added", **at, "part": no_summary}
        yield {"type": "response.reasoning_summary_text.delta", **at, "delta": text}
        yield {"type": "response.reasoning_summary_text.done", **at, "text": text}
        yield {"type": "response.reasoning_summary_part.done", **at, "part": item["summary"][0]}
        return
    if item["type"] == "custom_tool_call":
        given = item["input"]
        yield {"type": "response.custom_tool_call_input.delta", **at, "delta": given}
        yield {"type": "response.custom_tool_call_input.done", **at, "input": given}
        return
    if item["type"] == "function_call":
        arguments = item["arguments"]
        yield {"type": "response.function_call_arguments.delta", **at, "delta": arguments}
        yield {"type": "response.function_call_arguments.done", **at, "arguments": arguments}
        return
    text = item["content"][0]["text"]
    at["content_index"] = 0
    empty = {"type": "output_text", "text": "", "annotations": []}
    yield {"type": "response.content_part.added", **at, "part": empty}
    yield {"type": "response.output_text.delta", **at, "delta": text, "logprobs": []}
    yield {"type": "response.output_text.done", **at, "text": text, "logprobs": []}
    yield {"type": "response.content_part.done", **at, "part": item["content"][0]}


def pending_item(item: dict[str, Any]) -> dict[str, Any]:
    """An item as output_item.added shows it: in progress, nothing filled in yet."""
    pending = {**item, "status": "in_progress"}
    emptied: dict[str, tuple[str, Any]] = {
        "message": ("content", []),
        "function_call": ("arguments", ""),
        "custom_tool_call": ("input", ""),
    }
    emptied["reasoning"] = ("summary", [])
    name, empty = emptied[item["type"]]
    pending[name] = empty
    return pending


def responses_events(body: dict[str, Any], items: list[dict[str, Any]]) -> Iterator[bytes]:
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": responses_object(body, "in_progress", [])},
        {"type": "response.in_progress", "response": responses_object(body, "in_progress", [])},
    ]
    for index, item in enumerate(items):
        at = {"output_index": index}
        events.append({"type": "response.output_item.added", **at, "item": pending_item(item)})
        events.extend(responses_item_events(item, index))
        events.append({"type": "response.output_item.done", **at, "item": item})
    done = responses_object(body, "completed", items)
    events.append({"type": "response.completed", "response": done})
    for number, event in enumerate(events):
        yield sse({**event, "sequence_number": number}, event["type"])


# --- OpenAI Chat Completions ----------------------------------------------------------------


def chat_tool_call(script: Script) -> dict[str, Any]:
    function = {"name": script.tool_name, "arguments": json.dumps(script.tool_args)}
    return {"id": new_id("call_"), "type": "function", "function": function}


def chat_completion(script: Script, model: str, tool: bool) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": None if tool else script.reply_text}
    if script.reasoning:
        message["reasoning_content"] = script.reasoning
    if tool:
        message["tool_calls"] = [chat_tool_call(script)]
    choice = {"index": 0, "message": message, "finish_reason": "tool_calls" if tool else "stop"}
    usage = {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}
    head = {"id": new_id("chatcmpl-"), "object": "chat.completion", "created": int(time.time())}
    return {**head, "model": model, "choices": [choice], "usage": usage}


def chat_events(script: Script, model: str, tool: bool) -> Iterator[bytes]:
    head: dict[str, Any] = {"id": new_id("chatcmpl-"), "object": "chat.completion.chunk"}
    head |= {"created": int(time.time()), "model": model}

    def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
        return sse({**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

    yield chunk({"role": "assistant", "content": ""}, None)
    if script.reasoning:
        yield chunk({"reasoning_content": script.reasoning}, None)
    if tool:
        call = {"index": 0, **chat_tool_call(script)}
        yield chunk({"tool_calls": [call]}, None)
    else:
        yield chunk({"content": script.reply_text}, None)
    yield chunk({}, "tool_calls" if tool else "stop")
    usage = {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}
    yield sse({**head, "choices": [], "usage": usage})
    yield b"data: [DONE]\n\n"


# --- the server -----------------------------------------------------------------------------


async def stream(request: web.Request, chunks: Iterator[bytes]) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    response.headers["Cache-Control"] = "no-cache"
    await response.prepare(request)
    for piece in chunks:
        await response.write(piece)
    await response.write_eof()
    return response


def models_list(model: str) -> dict[str, Any]:
    """One body that both an OpenAI and an Anthropic model-list client can read."""
    entry = {"id": model, "object": "model", "created": 0, "owned_by": "recorder"}
    entry |= {"type": "model", "display_name": model, "created_at": "2025-01-01T00:00:00Z"}
    return {"object": "list", "data": [entry], "has_more": False, "first_id": model}


def refusal(script: Script) -> dict[str, Any]:
    """An error body both an Anthropic and an OpenAI client can read."""
    message = f"recorder refuses with {script.fail_status}"
    error = {"type": "invalid_request_error", "message": message, "param": None, "code": None}
    return {"type": "error", "error": error}


async def answer(request: web.Request, body: Any, script: Script) -> tuple[web.StreamResponse, str]:
    path = request.path.rstrip("/")
    posted = request.method == "POST" and isinstance(body, dict)
    if request.method == "GET" and path.endswith("/models"):
        return web.json_response(models_list(script.model)), "models"
    if not posted:
        return web.json_response({"error": {"message": "not recorded"}}, status=404), "404"
    if script.fail_status and not path.endswith("/count_tokens"):
        return web.json_response(refusal(script), status=script.fail_status), "error"
    tool = wants_tool_call(script, body)
    kind = "tool" if tool else "text"
    model = str(body.get("model", script.model))
    if path.endswith("/messages/count_tokens"):
        return web.json_response({"input_tokens": 12}), "count_tokens"
    if path.endswith("/messages"):
        message = anthropic_message(script, model, tool)
        if body.get("stream"):
            return await stream(request, anthropic_events(message)), kind
        return web.json_response(message), kind
    if path.endswith("/responses"):
        items = responses_items(script, body, tool)
        if body.get("stream"):
            return await stream(request, responses_events(body, items)), kind
        return web.json_response(responses_object(body, "completed", items)), kind
    if path.endswith("/chat/completions"):
        if body.get("stream"):
            return await stream(request, chat_events(script, model, tool)), kind
        return web.json_response(chat_completion(script, model, tool)), kind
    return web.json_response({"error": {"message": "not recorded"}}, status=404), "404"


Answerer = Callable[[web.Request, Any, Script], Awaitable[tuple[web.StreamResponse, str]]]


def make_app(recording: Recording, answerer: Answerer | None = None) -> web.Application:
    """Every request logged, then answered by `answerer` (default: the chat dialects here)."""
    reply = answerer or answer

    async def handle(request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body, read_as = decode_body(raw, request.headers.get("Content-Encoding", ""))
        entry: dict[str, Any] = {
            "method": request.method,
            "path": request.path,
            "query": redact_query(request.query),
            "headers": redact_headers(request.headers),
            "body_read_as": read_as,
            "body": body,
        }
        response, kind = await reply(request, body, recording.script)
        recording.write({**entry, "answered": kind, "status": response.status})
        return response

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


async def start(
    log_path: Path, script: Script, port: int = 0, answerer: Answerer | None = None
) -> tuple[web.AppRunner, int]:
    """Start a recorder on 127.0.0.1; returns the runner (to clean up) and the bound port."""
    runner = web.AppRunner(make_app(Recording(log_path, script), answerer), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    addresses = runner.addresses  # a started site has its sockets: (host, port)
    return runner, int(addresses[0][1])


async def main(args: argparse.Namespace) -> None:
    script = Script(reply_text=args.reply, tool_name=args.tool_name, model=args.model)
    script.reasoning = args.reasoning
    script.fail_status = args.fail_status
    script.tool_args = json.loads(args.tool_args) if args.tool_args else {}
    await serve_forever(*await start(Path(args.log), script, args.port))


async def serve_forever(runner: web.AppRunner, port: int) -> None:
    """Say where a started recorder listens, then serve until cancelled."""
    print(f"listening http://127.0.0.1:{port}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", required=True, help="JSON-lines file to append requests to")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--reply", default="hi from the recorder")
    parser.add_argument("--model", default="some-model")
    parser.add_argument("--tool-name", default=None)
    parser.add_argument("--tool-args", default=None, help="JSON object of tool arguments")
    parser.add_argument("--reasoning", default=None, help="reasoning text to answer first")
    parser.add_argument("--fail-status", type=int, default=None, help="refuse with this status")
    asyncio.run(main(parser.parse_args()))
