"""The field tables (modelport/wire/*/fields.py): the doc agrees with them, they list every
field the official SDKs send, and their fates are what transcoding does.

docs/fields.md is the tables rendered: a row changed in one and not the other fails here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from modelport.errors import Unsupported
from modelport.types import WireFormat
from modelport.wire import codec_for
from modelport.wire.fields import Fate, FieldTable, Row, Target, render_rows
from modelport.wire.openai import decode_embed_request
from modelport.wire.openai.fields import EMBED_FIELDS
from tests.captures import client_requests

DOC = Path(__file__).resolve().parents[2] / "docs" / "fields.md"
TABLES: dict[WireFormat, FieldTable] = {
    f: table for f in WireFormat if (table := codec_for(f).fields) is not None
}
# The smallest valid request of each dialect, to which one field is added.
BASE: dict[WireFormat, dict[str, Any]] = {
    WireFormat.OPENAI: {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
    WireFormat.ANTHROPIC: {
        "model": "m",
        "max_tokens": 16,
        "messages": [{"role": "user", "content": "hi"}],
    },
    WireFormat.RESPONSES: {"model": "m", "input": "hi"},
    WireFormat.OLLAMA: {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
    WireFormat.OLLAMA_GENERATE: {"model": "m", "prompt": "hi"},
}


def _doc_section(title: str) -> list[str]:
    """The table lines under `## <title>` in docs/fields.md."""
    lines = DOC.read_text().splitlines()
    start = lines.index(f"## {title}")
    table: list[str] = []
    for line in lines[start + 1 :]:
        if line.startswith(("## ", "### ")):  # a subsection holds its own table
            break
        if line.startswith("|"):
            table.append(line)
    return table


@pytest.mark.parametrize(
    "table",
    [*{t.title: t for t in TABLES.values()}.values(), EMBED_FIELDS],
    ids=lambda t: t.title.split(" (")[0],
)
def test_doc_table_is_the_code_table(table: FieldTable) -> None:
    doc = _doc_section(table.title)
    code = render_rows(table)
    missing = [line for line in code if line not in doc]
    stale = [line for line in doc if line not in code]
    assert not missing and not stale, (
        f"docs/fields.md section {table.title!r} differs from the code's table.\n"
        "Rows the doc lacks:\n" + "\n".join(missing) + "\nRows the code lacks:\n" + "\n".join(stale)
    )
    assert doc == code  # same order too


def test_doc_keeps_the_other_dialects_sections_at_the_end() -> None:
    headings = [line for line in DOC.read_text().splitlines() if line.startswith("## ")]
    assert headings[-2:] == [
        "## Ollama API (client dialect)",
        "## Legacy completions and embeddings",
    ]


def _sdk_fields(*classes: Any) -> set[str]:
    names: set[str] = set()
    for cls in classes:
        for klass in cls.__mro__:
            names.update(getattr(klass, "__annotations__", {}))
    return names


def _sdk_params() -> dict[WireFormat, set[str]]:
    from anthropic.types import message_create_params as messages
    from anthropic.types.beta import message_create_params as beta_messages
    from ollama import _types as ollama
    from openai.types.chat import completion_create_params as chat
    from openai.types.responses import response_create_params as responses

    return {
        WireFormat.OPENAI: _sdk_fields(
            chat.CompletionCreateParamsBase, chat.CompletionCreateParamsStreaming
        ),
        WireFormat.ANTHROPIC: _sdk_fields(
            messages.MessageCreateParamsBase,
            messages.MessageCreateParamsStreaming,
            beta_messages.MessageCreateParamsBase,
        )
        - {"betas"},  # the SDK sends `betas` as the anthropic-beta header
        WireFormat.RESPONSES: _sdk_fields(
            responses.ResponseCreateParamsBase, responses.ResponseCreateParamsStreaming
        ),
        # ollama-python's pydantic models (and api/types.go's fields it lacks: truncate, shift,
        # _debug_render_only).
        WireFormat.OLLAMA: set(ollama.ChatRequest.model_fields)
        | set(ollama.GenerateRequest.model_fields)
        | {"truncate", "shift", "_debug_render_only"},
        WireFormat.OLLAMA_GENERATE: set(ollama.GenerateRequest.model_fields),
    }


@pytest.mark.parametrize("fmt", list(TABLES))
def test_every_field_the_sdk_sends_has_a_row(fmt: WireFormat) -> None:
    """The SDKs' params TypedDicts list every top-level field of the current API."""
    rows = {r.path for r in TABLES[fmt].top_level()}
    missing = _sdk_params()[fmt] - rows
    assert not missing, f"{TABLES[fmt].title}: no row for {sorted(missing)}"


def _refused_cells() -> list[tuple[WireFormat, Row, Target]]:
    """Every (dialect, top-level row, target) the table refuses where passthrough carries."""
    cells = []
    for fmt, table in TABLES.items():
        for r in table.top_level():
            if r.passthrough.fate is Fate.REFUSED:
                continue  # the decoder refuses it everywhere: tests/wire/*/test_requests.py
            for target in Target:
                if target is not table.own and r.to[target].fate is Fate.REFUSED:
                    cells.append((fmt, r, target))
    return cells


def test_every_embeddings_field_the_sdk_sends_has_a_row_and_others_are_refused() -> None:
    from openai.types import embedding_create_params

    sdk = _sdk_fields(embedding_create_params.EmbeddingCreateParams)
    assert sdk == set(EMBED_FIELDS.by_path)
    body = {"model": "e", "input": "hi", "user": "u", "encoding_format": "base64"}
    assert decode_embed_request(body).inputs == ("hi",)
    with pytest.raises(Unsupported) as caught:
        decode_embed_request({**body, "truncate_prompt_tokens": 8})
    assert caught.value.param == "truncate_prompt_tokens"
    assert caught.value.message.startswith("truncate_prompt_tokens: 8 is not supported by ")


@pytest.mark.parametrize(
    ("fmt", "rule", "target"),
    _refused_cells(),
    ids=lambda v: v.path if isinstance(v, Row) else str(v),
)
def test_refused_rows_are_refused_naming_the_field_and_engine(
    fmt: WireFormat, rule: Row, target: Target
) -> None:
    codec = codec_for(fmt)
    request = codec.decode_request({**BASE[fmt], rule.path: rule.example})
    with pytest.raises(Unsupported) as caught:
        codec.upstream_extra(request, target, "engine-x")
    assert caught.value.param == rule.path
    assert caught.value.message.startswith(f"{rule.path}: ")
    assert "is not supported by engine-x" in caught.value.message
    assert caught.value.status == 400


def test_inert_values_ask_for_nothing() -> None:
    codec = codec_for(WireFormat.OPENAI)
    body = {**BASE[WireFormat.OPENAI], "n": 1, "logprobs": False, "top_logprobs": 0}
    request = codec.decode_request({**body, "frequency_penalty": 0, "modalities": ["text"]})
    assert codec.upstream_extra(request, Target.ANTHROPIC, "anthropic") == {}


def test_carried_rows_reach_the_target_under_its_name() -> None:
    for fmt, table in TABLES.items():
        codec = codec_for(fmt)
        for r in table.top_level():
            for target in Target:
                cell = r.to[target]
                if target is table.own or cell.fate is not Fate.CARRIED:
                    continue
                request = codec.decode_request({**BASE[fmt], r.path: r.example})
                extra = codec.upstream_extra(request, target, "engine-x")
                key = cell.name.rsplit(".", 1)[-1] if cell.name else r.path
                assert extra == {key: r.example}, (fmt, r.path, target)


def test_dropped_rows_are_not_sent() -> None:
    for fmt, table in TABLES.items():
        codec = codec_for(fmt)
        for r in table.top_level():
            for target in Target:
                if target is table.own or r.to[target].fate is not Fate.DROPPED:
                    continue
                request = codec.decode_request({**BASE[fmt], r.path: r.example})
                assert r.path not in codec.upstream_extra(request, target, "engine-x")


def test_an_unknown_field_is_refused_when_transcoding_and_kept_for_its_own_dialect() -> None:
    codec = codec_for(WireFormat.ANTHROPIC)
    request = codec.decode_request({**BASE[WireFormat.ANTHROPIC], "brand_new": 1})
    with pytest.raises(Unsupported, match=r"^brand_new: 1 is not supported by localai"):
        codec.upstream_extra(request, Target.OPENAI, "localai")
    assert codec.upstream_extra(request, Target.ANTHROPIC, "anthropic") == {"brand_new": 1}


# -- what real clients send is never refused on the paths they take ------------------------

# (captured path, dialect, the targets that client is transcoded to)
_CLIENT_PATHS = {
    "/v1/messages": (WireFormat.ANTHROPIC, (Target.OPENAI, Target.OLLAMA)),
    "/v1/chat/completions": (WireFormat.OPENAI, (Target.ANTHROPIC, Target.OLLAMA)),
    "/v1/responses": (WireFormat.RESPONSES, (Target.OPENAI, Target.ANTHROPIC, Target.OLLAMA)),
}
_AGENT_CAPTURES = [
    c
    for pattern in ("claude-code-*.jsonl", "codex-*.jsonl", "opencode-*.jsonl")
    for c in client_requests(pattern)
    if c.path in _CLIENT_PATHS
]


def test_the_agent_captures_are_here() -> None:
    clients = {c.name.split("-")[0] for c in _AGENT_CAPTURES}
    assert clients == {"claude", "codex", "opencode"}
    assert {c.path for c in _AGENT_CAPTURES} == set(_CLIENT_PATHS)


@pytest.mark.parametrize("capture", _AGENT_CAPTURES, ids=lambda c: c.name)
def test_every_field_an_agent_sends_is_carried_mapped_or_dropped(capture: Any) -> None:
    fmt, targets = _CLIENT_PATHS[capture.path]
    table = TABLES[fmt]
    codec = codec_for(fmt)
    request = codec.decode_request(capture.body)  # nested fields: the decoder takes them all
    for key, value in capture.body.items():
        rule = table.by_path.get(key)
        assert rule is not None, f"{capture.name}: no row for {key!r}"
        for target in targets:
            fate = rule.to[target].fate
            assert fate is not Fate.REFUSED or rule.is_inert(value), (capture.name, key, target)
    for target in targets:
        codec.upstream_extra(request, target, "engine-x")  # raises on a refused field


def test_row_paths_are_field_paths() -> None:
    for table in TABLES.values():
        for r in table.rows:
            assert re.fullmatch(r"[a-z_]+(\[\])?(\.[a-z_]+(\[\])?)*", r.path), r.path
            assert set(r.to) == set(Target)


def test_sdk_params_are_typed_dicts() -> None:
    """The SDK coverage test reads annotations: make sure there are some to read."""
    params = _sdk_params()
    assert {"n", "logprobs", "top_logprobs", "messages"} <= params[WireFormat.OPENAI]
    assert {"max_tokens", "thinking", "output_config"} <= params[WireFormat.ANTHROPIC]
    assert {"input", "previous_response_id"} <= params[WireFormat.RESPONSES]


# -- nested fields: every field of the SDKs' message, block and tool params has a row -----


def _covered(table: FieldTable, prefix: str, field: str, kind: str | None = None) -> bool:
    """A row for `prefix.field` (or below it), or for the block type that carries it."""
    path = f"{prefix}.{field}"
    if any(p == path or p.startswith(path + ".") for p in table.by_path):
        return True
    return kind is not None and f"{prefix}.{kind}" in table.by_path


def test_every_openai_message_and_part_field_has_a_row() -> None:
    from openai.types.chat import (
        chat_completion_assistant_message_param as assistant,
    )
    from openai.types.chat import (
        chat_completion_content_part_image_param as image,
    )
    from openai.types.chat import (
        chat_completion_content_part_input_audio_param as audio,
    )
    from openai.types.chat import (
        chat_completion_content_part_param as part,
    )
    from openai.types.chat import (
        chat_completion_content_part_text_param as text,
    )
    from openai.types.chat import (
        chat_completion_developer_message_param as developer,
    )
    from openai.types.chat import (
        chat_completion_system_message_param as system,
    )
    from openai.types.chat import (
        chat_completion_tool_message_param as tool,
    )
    from openai.types.chat import (
        chat_completion_user_message_param as user,
    )

    table = TABLES[WireFormat.OPENAI]
    messages = _sdk_fields(
        user.ChatCompletionUserMessageParam,
        assistant.ChatCompletionAssistantMessageParam,
        tool.ChatCompletionToolMessageParam,
        system.ChatCompletionSystemMessageParam,
        developer.ChatCompletionDeveloperMessageParam,
    )
    missing = {f for f in messages if not _covered(table, "messages[]", f)}
    parts = _sdk_fields(
        text.ChatCompletionContentPartTextParam,
        image.ChatCompletionContentPartImageParam,
        audio.ChatCompletionContentPartInputAudioParam,
        part.File,
    ) - {"type"}
    missing |= {f for f in parts if not _covered(table, "messages[].content[]", f)}
    assert not missing, sorted(missing)


def test_every_anthropic_block_and_tool_field_has_a_row() -> None:
    import anthropic.types as types

    table = TABLES[WireFormat.ANTHROPIC]
    blocks = {
        "text": types.TextBlockParam,
        "image": types.ImageBlockParam,
        "tool_use": types.ToolUseBlockParam,
        "tool_result": types.ToolResultBlockParam,
        "thinking": types.ThinkingBlockParam,
        "redacted_thinking": types.RedactedThinkingBlockParam,
    }
    missing = {
        f"{kind}.{f}"
        for kind, cls in blocks.items()
        for f in _sdk_fields(cls) - {"type"}
        if not _covered(table, "messages[].content[]", f, kind)
    }
    tool_fields = _sdk_fields(types.ToolParam) - {"name", "description"}  # the `tools` row's
    missing |= {f"tools[].{f}" for f in tool_fields if not _covered(table, "tools[]", f)}
    assert not missing, sorted(missing)


# -- Ollama's `options`: one object on the wire, a row per field ---------------------------

_OLLAMA_OPTIONS = [r for r in TABLES[WireFormat.OLLAMA].rows if r.path.startswith("options.")]


@pytest.mark.parametrize("fmt", [WireFormat.OLLAMA, WireFormat.OLLAMA_GENERATE])
@pytest.mark.parametrize("rule", _OLLAMA_OPTIONS, ids=lambda r: r.path)
def test_each_ollama_option_meets_its_row_when_transcoded(fmt: WireFormat, rule: Row) -> None:
    codec = codec_for(fmt)
    name = rule.path.removeprefix("options.")
    value = rule.example if rule.example is not True else 1
    request = codec.decode_request({**BASE[fmt], "options": {name: value}})
    for target in (Target.OPENAI, Target.ANTHROPIC):
        cell = rule.to[target]
        if cell.fate is Fate.REFUSED:
            with pytest.raises(Unsupported) as caught:
                codec.upstream_extra(request, target, "engine-x")
            assert caught.value.param == rule.path
            assert caught.value.message.startswith(f"{rule.path}: {value} is not supported by")
            continue
        extra = codec.upstream_extra(request, target, "engine-x")
        if cell.fate is Fate.CARRIED:
            assert extra == {cell.name or name: value}, (rule.path, target)
        else:  # mapped (modelled by the decoder) or dropped by name: nothing in extra
            assert extra == {}, (rule.path, target)
    # an Ollama engine gets the options as they came
    assert codec.upstream_extra(request, Target.OLLAMA, "ollama").get("options", {}) == (
        {} if rule.to[Target.OPENAI].fate is Fate.MAPPED else {name: value}
    )


def test_every_option_ollama_and_ollama_python_know_has_a_row() -> None:
    from ollama import _types as ollama

    # api/types.go Options and Runner (ollama/ollama, main), beside ollama-python's list
    server = {
        *("num_keep", "seed", "num_predict", "top_k", "top_p", "min_p", "typical_p"),
        *("repeat_last_n", "temperature", "repeat_penalty", "presence_penalty"),
        *("frequency_penalty", "stop", "num_ctx", "num_batch", "num_gpu", "main_gpu"),
        *("use_mmap", "num_thread", "draft_num_predict"),
    }
    rows = {r.path.removeprefix("options.") for r in _OLLAMA_OPTIONS}
    # f16_kv has no row (a path is letters): refused as unknown when transcoding
    assert (server | set(ollama.Options.model_fields)) - rows == {"f16_kv"}
