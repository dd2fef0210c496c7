"""/api/generate as a client dialect: the body decoded into a ChatRequest, and back.

A generate is a chat of one user message (`prompt`, with its `images`) under `system`.
What only Ollama can do with a prompt stays in `extra` for a passthrough to an Ollama
engine and is refused by name when transcoding (its rows in wire/ollama/fields.py):
`suffix` (fill in the middle: an engine without it would answer a different question;
legacy completions serve it), `raw` and `template` (Ollama's prompt templating), `context`
(token ids of an earlier answer), `logprobs`, and the image-generation settings.
Shapes: api/types.go GenerateRequest; ollama-py-generate*.jsonl.
"""

from __future__ import annotations

from typing import Any

from modelport.types import ChatRequest, Image, Message, Part, Text
from modelport.wire.ollama.request import encode_chat_request
from modelport.wire.ollama.request_decode import (
    Options,
    extra_of,
    images,
    keep_alive,
    response_format,
    think,
)
from modelport.wire.validate import JSONObject, fail, load_body, non_empty_text, optional_bool
from modelport.wire.validate import text as text_field

_KEYS = frozenset({"model", "prompt", "system", "images", "format", "options", "think", "stream"})


def decode_request(body: bytes | dict[str, Any]) -> ChatRequest:
    """A client's /api/generate body, validated."""
    obj = load_body(body)
    model = non_empty_text(obj, "model", "model")
    prompt = text_field(obj, "prompt", "prompt")
    pictures = images(obj.get("images"), "images")
    if not prompt and not pictures:
        # Ollama answers an empty prompt by loading the model ("done_reason": "load").
        fail("prompt", "must not be empty")
    parts: list[Part] = [Text(prompt)] if prompt else []
    parts.extend(pictures)
    system = obj.get("system")
    if system is not None:
        system = text_field(obj, "system", "system")
    options = Options(obj.get("options"))
    keep_alive(obj)
    stream = optional_bool(obj, "stream", "stream")
    return ChatRequest(
        model=model,
        messages=(Message("user", tuple(parts)),),
        system=system or None,
        max_tokens=options.max_tokens,
        temperature=options.temperature,
        top_p=options.top_p,
        stop=options.stop,
        response_format=response_format(obj.get("format")),
        reasoning=think(obj.get("think")),
        stream=stream is not False,
        extra=extra_of(obj, _KEYS, options),
    )


def encode_request(request: ChatRequest) -> JSONObject:
    """A ChatRequest as a /api/generate body: its last user text is the prompt, with that
    message's images; the settings as the chat encoder writes them."""
    chat = encode_chat_request(request, stream=request.stream)
    users = [m for m in request.messages if m.role == "user"]
    parts = users[-1].content if users else ()
    body: JSONObject = {
        "model": chat.pop("model"),
        "prompt": "\n\n".join(p.text for p in parts if isinstance(p, Text)),
    }
    pictures = [p.data for p in parts if isinstance(p, Image) and p.data]
    if pictures:
        body["images"] = pictures
    if request.system:
        body["system"] = request.system
    for key in ("messages", "tools"):
        chat.pop(key, None)
    body.update(chat)
    return body
