"""Every field of an Ollama /api/chat or /api/generate request and its fate per target (see
wire/fields.py).

Sources: ollama/ollama api/types.go (ChatRequest, GenerateRequest, Message, ToolCall, Options
and Runner) and ollama-python 0.6.3's `_types.py` (its Options still lists settings Ollama
removed: Ollama ignores those with a warning, so dropping them changes nothing either).

`options` is one object on the wire; its fields have rows of their own (`options.seed`) and
reach `upstream_extra` under those paths (OllamaCodec flattens them), so each is carried under
the target's name, dropped or refused by itself. The table serves both endpoints: a field of
the other one meets its row too (`suffix` on /api/chat is refused, `prompt` not sent), where
Ollama's own JSON decoding would ignore it. ollama-python's `f16_kv` (gone from Ollama) has no
row, as a path is letters: it is refused when transcoding, as an unknown field.
"""

from __future__ import annotations

from typing import Any

from modelport.wire.fields import (
    CARRIED,
    DROPPED,
    MAPPED,
    REFUSED,
    FieldTable,
    Row,
    Target,
    carried,
    mapped,
    row,
)

_LOAD = "how Ollama loads the model: an engine-load setting the gateway does not own"
_REMOVED = "gone from Ollama's Options (ollama-python still has it): Ollama ignores it too"
_NO_ANTHROPIC = "Anthropic has none"
_OLLAMA_ONLY = "Ollama's own prompt handling: another engine would answer another question"


def _both(path: str, openai: Any, anthropic: Any, note: str = "", **kw: Any) -> Row:
    """A row whose Ollama column is the passthrough (the table's own dialect)."""
    return row(path, openai, anthropic, CARRIED, note, **kw)


def _sampler(path: str, name: str, note: str, inert: tuple[Any, ...], example: Any) -> Row:
    """A sampling option OpenAI-compatible engines take under `name` and Anthropic lacks."""
    return _both(path, carried(name), REFUSED, note, inert=inert, example=example)


def _dropped(path: str, note: str, example: Any = True) -> Row:
    return _both(path, DROPPED, DROPPED, note, example=example)


_TOP_LEVEL = (
    _both("model", MAPPED, MAPPED, "the route's model name replaces it"),
    _both("messages", MAPPED, MAPPED, "chat; leading system messages -> `system`"),
    _both("prompt", mapped("messages[0]"), mapped("messages[0]"), "generate: the user message"),
    _both("system", mapped("messages[0]"), MAPPED, "generate"),
    _both("images", MAPPED, MAPPED, "generate: the user message's images"),
    _both("tools", MAPPED, MAPPED, "chat; `[]` is none"),
    _both("stream", MAPPED, MAPPED, "absent or null streams, as Ollama"),
    _both(
        "format", mapped("response_format"), mapped("output_config.format"), '"json" or a schema'
    ),
    _both(
        "think",
        mapped("reasoning_effort"),
        mapped("thinking"),
        "true: medium; false: none; or a level",
    ),
    _both("options", MAPPED, MAPPED, "each of its fields by its `options.*` row"),
    _dropped("keep_alive", "how long Ollama keeps the model loaded: " + _LOAD, "5m"),
    _dropped("truncate", "context-overflow policy of Ollama's runner; the engine has its own"),
    _dropped("shift", "context-overflow policy of Ollama's runner; the engine has its own"),
    _both(
        "suffix",
        REFUSED,
        REFUSED,
        "generate: fill in the middle; legacy `/v1/completions` serves it",
        inert=("",),
        example="return x",
    ),
    _both("template", REFUSED, REFUSED, _OLLAMA_ONLY, inert=("",), example="{{ .Prompt }}"),
    _both("raw", REFUSED, REFUSED, _OLLAMA_ONLY, inert=(False,)),
    _both(
        "context",
        REFUSED,
        REFUSED,
        "generate: token ids of an earlier Ollama answer",
        inert=lambda v: v == [],
        example=[1, 2, 3],
    ),
    _both(
        "_debug_render_only",
        REFUSED,
        REFUSED,
        "answers Ollama's rendered prompt, not the model's",
        inert=(False,),
    ),
    _both(
        "logprobs",
        REFUSED,
        REFUSED,
        "the gateway's Ollama answer does not carry them back",
        inert=(False,),
    ),
    _both(
        "top_logprobs",
        REFUSED,
        REFUSED,
        "the gateway's Ollama answer does not carry them back",
        inert=(0,),
        example=3,
    ),
    _both("width", REFUSED, REFUSED, "generate: image generation", example=512),
    _both("height", REFUSED, REFUSED, "generate: image generation", example=512),
    _both("steps", REFUSED, REFUSED, "generate: image generation", example=20),
)

_OPTIONS = (
    _both("options.temperature", mapped("temperature"), mapped("temperature")),
    _both("options.top_p", mapped("top_p"), mapped("top_p")),
    _both(
        "options.num_predict",
        mapped("max_tokens"),
        mapped("max_tokens"),
        "-1 and -2 (no limit, fill the context): none",
    ),
    _both(
        "options.stop",
        mapped("stop"),
        mapped("stop_sequences"),
        "a string or an array",
        example=["END"],
    ),
    _both("options.seed", carried("seed"), REFUSED, "Anthropic has no seed", example=42),
    _both(
        "options.top_k",
        carried("top_k"),
        carried("top_k"),
        "vendor field of vLLM and llama-server",
        example=40,
    ),
    _sampler("options.min_p", "min_p", "vLLM, llama-server; " + _NO_ANTHROPIC, (0, 0.0), 0.05),
    _sampler("options.typical_p", "typical_p", "llama-server; " + _NO_ANTHROPIC, (1, 1.0), 0.9),
    _sampler(
        "options.repeat_penalty",
        "repeat_penalty",
        "llama-server's name (vLLM's is `repetition_penalty`); " + _NO_ANTHROPIC,
        (1, 1.0),
        1.1,
    ),
    _both(
        "options.repeat_last_n",
        carried("repeat_last_n"),
        DROPPED,
        "llama-server; the window of `repeat_penalty`, which decides on its own",
        example=64,
    ),
    _sampler("options.presence_penalty", "presence_penalty", _NO_ANTHROPIC, (0, 0.0), 0.5),
    _sampler("options.frequency_penalty", "frequency_penalty", _NO_ANTHROPIC, (0, 0.0), 0.5),
    _dropped("options.num_keep", "tokens Ollama's runner keeps when it shifts the context"),
    *(
        _dropped(f"options.{name}", _LOAD)
        for name in (
            "num_ctx",
            "num_batch",
            "num_gpu",
            "main_gpu",
            "use_mmap",
            "num_thread",
            "draft_num_predict",
        )
    ),
    *(
        _dropped(f"options.{name}", _REMOVED)
        for name in (
            "numa",
            "low_vram",
            "logits_all",
            "vocab_only",
            "use_mlock",
            "embedding_only",
            "tfs_z",
            "mirostat",
            "mirostat_tau",
            "mirostat_eta",
            "penalize_newline",
        )
    ),
)

# Nested fields: the decoder reads or refuses them as the row says.
_NESTED = (
    _both("messages[].role", MAPPED, MAPPED, "system, user, assistant, tool; lowercased"),
    _both("messages[].content", MAPPED, MAPPED),
    _both("messages[].thinking", mapped("reasoning_content"), mapped("thinking")),
    _both("messages[].images", mapped("image_url"), mapped("source"), "base64, type sniffed"),
    _both("messages[].tool_calls", MAPPED, mapped("tool_use")),
    _both(
        "messages[].tool_name",
        mapped("tool_call_id"),
        mapped("tool_use_id"),
        "pairs a tool result with its call: by id, then name, then order",
    ),
    _both("messages[].tool_call_id", MAPPED, mapped("tool_use_id")),
    _both("messages[].tool_calls[].id", MAPPED, MAPPED, "minted when absent"),
    _both(
        "messages[].tool_calls[].function.index",
        DROPPED,
        DROPPED,
        "the call's place, which the order of the calls already says",
    ),
    _both("messages[].tool_calls[].function.name", MAPPED, MAPPED),
    _both("messages[].tool_calls[].function.arguments", MAPPED, mapped("input"), "an object"),
    _both("tools[].type", MAPPED, MAPPED, "`function`; others refused (decoder)"),
    _both("tools[].function", MAPPED, MAPPED, "name, description, parameters"),
)

FIELDS = FieldTable("Ollama API (client dialect)", Target.OLLAMA, _TOP_LEVEL + _OPTIONS + _NESTED)
