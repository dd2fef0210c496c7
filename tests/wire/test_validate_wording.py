"""One validator family: the same mistake reads the same in every dialect.

New: before, /v1/chat/completions said "messages must be an array" where /v1/messages said
"messages: expected an array of messages, got string"; now both say the latter.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from modelport.errors import InvalidRequest
from modelport.types import WireFormat
from modelport.wire import codec_for, openai
from modelport.wire.completions import check_request

USER = [{"role": "user", "content": "hi"}]


def _bodies(**changes: Any) -> tuple[bytes, bytes]:
    """The same request for each dialect (Anthropic's needs max_tokens), with `changes`."""
    openai: dict[str, Any] = {"model": "m", "messages": USER}
    anthropic: dict[str, Any] = {"model": "m", "max_tokens": 5, "messages": USER}
    for body in (openai, anthropic):
        body.update(changes)
        for key in [k for k, v in body.items() if v is DROP]:
            del body[key]
    return json.dumps(openai).encode(), json.dumps(anthropic).encode()


DROP = object()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"messages": "bad"}, "messages: expected an array of messages, got string"),
        ({"messages": DROP}, "messages: field required"),
        ({"model": DROP}, "model: field required"),
        ({"model": 7}, "model: expected a string, got number"),
        ({"temperature": "hot"}, "temperature: expected a number, got string"),
        ({"top_p": True}, "top_p: expected a number, got boolean"),
        ({"stream": "yes"}, "stream: expected a boolean, got string"),
        ({"max_tokens": "9"}, "max_tokens: expected an integer, got string"),
        ({"tools": {}}, "tools: expected an array of tools, got object"),
        ({"messages": ["hi"]}, "messages[0]: expected an object, got string"),
        (
            {"messages": [{"role": 3, "content": "x"}]},
            "messages[0].role: expected a string, got number",
        ),
        (
            {"messages": [{"role": "robot", "content": "x"}]},
            "messages[0].role: 'robot' is not supported",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "video"}]}]},
            "messages[0].content[0].type: 'video' is not supported",
        ),
    ],
)
def test_same_mistake_same_message_in_both_dialects(changes: dict[str, Any], message: str) -> None:
    seen = []
    for format, body in zip(
        (WireFormat.OPENAI, WireFormat.ANTHROPIC), _bodies(**changes), strict=True
    ):
        with pytest.raises(InvalidRequest) as caught:
            codec_for(format).decode_request(body)
        seen.append((caught.value.message, caught.value.param))
    param = message.split(":")[0]
    assert seen == [(message, param), (message, param)]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[1, 2]", "request body must be a JSON object, got array"),
        (b'"text"', "request body must be a JSON object, got string"),
    ],
)
def test_body_that_is_not_an_object_reads_the_same(body: bytes, message: str) -> None:
    for format in WireFormat:
        with pytest.raises(InvalidRequest) as caught:
            codec_for(format).decode_request(body)
        assert (caught.value.message, caught.value.param) == (message, None)


@pytest.mark.parametrize(
    ("value", "tail"),
    [
        ([[1, -2]], "[0][1]: expected a token id, got number"),
        ([[1, True]], "[0][1]: expected a token id, got boolean"),
        ([[1], []], "[1]: must not be empty"),
        ([[1], "a"], "[1]: expected an array of token ids, got string"),
        (["a", 2], "[1]: expected a string, got number"),
        ([], ": must not be empty"),
    ],
)
def test_token_ids_read_the_same_as_a_prompt_and_as_an_embeddings_input(
    value: Any, tail: str
) -> None:
    """New (issue 10, points 2 and 4): legacy completions' `prompt` and embeddings' `input`
    take token ids, checked by the one validator (validate.token_ids)."""
    with pytest.raises(InvalidRequest) as prompt:
        check_request({"model": "m", "prompt": value})
    with pytest.raises(InvalidRequest) as embed:
        openai.decode_embed_request({"model": "m", "input": value})
    assert prompt.value.message == "prompt" + tail
    assert embed.value.message == "input" + tail
