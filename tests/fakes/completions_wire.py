"""OpenAI legacy completions writer (`/v1/completions`: SSE and whole answers), per engine.

Where each shape comes from:
- llama-server: captured from the real b11434 binary (docs/captures/llamacpp_completions_*):
  keys in the order `choices, created, model, system_fingerprint, object, [usage], id,
  [timings]`; the finishing chunk always carries usage and timings, asked or not; `suffix` and
  `echo` are accepted and change nothing.
- vLLM: vllm/entrypoints/openai/completion/serving.py and protocol.py: chunks dumped with
  `exclude_unset` (`index, text, logprobs, finish_reason, stop_reason`), a usage chunk of its
  own (`choices: []`) only with `stream_options.include_usage`, `[DONE]` after an error
  frame; `suffix` is refused: 400 "suffix is not currently supported".
- Ollama: openai/openai.go (CompletionRequest, ToCompleteChunk) and middleware/openai.go
  (CompleteWriter): id `cmpl-<n>`, `system_fingerprint: "fp_ollama"`; with include_usage every
  chunk carries zero usage and a last chunk (`choices: []`) the real one; `prompt` must be a
  string (Go's decoder refuses an array); `suffix` goes to /api/generate.
- OpenAI: the API reference (`cmpl-` ids, `logprobs: null`, usage chunk on include_usage).
"""

from __future__ import annotations

import secrets
from typing import Any

from .core import Reply, chunks, now, openai_finish, rand_alnum, sse
from .openai_wire import DONE, _Envelope, llamacpp_timings, stream_error, usage
from .profiles import Profile

Frame = tuple[bytes, bool]


def _id(p: Profile) -> str:
    if p.kind == "llamacpp":
        return "chatcmpl-" + rand_alnum(32)  # llama-server names these as chat ids too
    if p.kind == "ollama":
        return f"cmpl-{secrets.randbelow(999)}"  # fmt.Sprintf("cmpl-%d", rand.Intn(999))
    return "cmpl-" + rand_alnum(29)


class _Completion:
    """One answer's id, clock and model, with the engine's key order."""

    def __init__(self, p: Profile, model: str) -> None:
        self.p = p
        self.id = _id(p)
        self.created = now()
        self.model = model

    def choice(self, text: str, finish: str | None) -> dict[str, Any]:
        kind = self.p.kind
        if kind == "llamacpp":
            return {"text": text, "index": 0, "logprobs": None, "finish_reason": finish}
        if kind == "ollama":
            return {"text": text, "index": 0, "finish_reason": finish}
        if kind.startswith("vllm"):
            return {
                "index": 0,
                "text": text,
                "logprobs": None,
                "finish_reason": finish,
                "stop_reason": None,
            }
        return {"text": text, "index": 0, "logprobs": None, "finish_reason": finish}

    def wrap(self, choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        if self.p.kind == "llamacpp":
            body: dict[str, Any] = {
                "choices": choices,
                "created": self.created,
                "model": self.model,
                "system_fingerprint": "b11434-b11434",
                "object": "text_completion",
            }
            if "usage" in extra:
                body["usage"] = extra.pop("usage")
            body["id"] = self.id
            body.update(extra)
            return body
        if self.p.kind == "ollama":
            return {
                "id": self.id,
                "object": "text_completion",
                "created": self.created,
                "choices": choices,
                "model": self.model,
                "system_fingerprint": "fp_ollama",
                **extra,
            }
        return {
            "id": self.id,
            "object": "text_completion",
            "created": self.created,
            "model": self.model,
            "choices": choices,
            **extra,
        }


def refusal(p: Profile, body: dict[str, Any]) -> tuple[int, str] | None:
    """The engine's own 400 for a body it does not take, as (status, message)."""
    if p.kind.startswith("vllm") and body.get("suffix") is not None:
        return 400, "suffix is not currently supported"
    if p.kind == "ollama" and not isinstance(body.get("prompt"), str):
        return 400, "json: cannot unmarshal array into Go struct field CompletionRequest.prompt"
    return None


def stream_frames(
    p: Profile, reply: Reply, body: dict[str, Any], model: str
) -> tuple[list[Frame], list[bytes]]:
    """The frames of one streamed completion, and those of its mid-stream error."""
    answer = _Completion(p, model)
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    n_in, n_out = reply.usage
    zero = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    frames: list[Frame] = []
    for piece in chunks(reply.text, reply.chunk_chars):
        extra = {"usage": zero} if p.kind == "ollama" and include_usage else {}
        frames.append((sse(answer.wrap([answer.choice(piece, None)], **extra)), True))
    finish = openai_finish(reply)
    if p.kind == "llamacpp":
        last = answer.wrap(
            [answer.choice("", finish)],
            usage=usage(p, n_in, n_out),
            timings=llamacpp_timings(n_in, n_out),
        )
        frames.append((sse(last), False))
    else:
        extra = {"usage": zero} if p.kind == "ollama" and include_usage else {}
        frames.append((sse(answer.wrap([answer.choice("", finish)], **extra)), False))
        if include_usage:
            frames.append((sse(answer.wrap([], usage=usage(p, n_in, n_out))), False))
    frames.append((DONE, False))
    env = _Envelope(p, model)
    error = [sse(stream_error(p, reply.error_message, env))]
    if p.done_after_error:
        error.append(DONE)
    return frames, error


def response(p: Profile, reply: Reply, body: dict[str, Any], model: str) -> dict[str, Any]:
    answer = _Completion(p, model)
    n_in, n_out = reply.usage
    extra: dict[str, Any] = {"usage": usage(p, n_in, n_out)}
    if p.kind == "llamacpp":
        extra["timings"] = llamacpp_timings(n_in, n_out)
    return answer.wrap([answer.choice(reply.text, openai_finish(reply))], **extra)
