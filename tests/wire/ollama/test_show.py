"""Ollama codec, /api/show: context window and capabilities."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelport.types import Capabilities
from modelport.wire import ollama

# -- /api/show ---------------------------------------------------------------------------


SHOW = {
    "modelfile": "...",
    "details": {"family": "qwen3"},
    "model_info": {
        "general.architecture": "qwen3",
        "qwen3.context_length": 40960,
        "llama.context_length": 1,
    },
    "capabilities": ["completion", "tools", "thinking"],
}


def test_context_window_from_show() -> None:
    assert ollama.context_window_from_show(SHOW) == 40960
    assert ollama.context_window_from_show({"model_info": {"general.architecture": "bert"}}) is None
    assert ollama.context_window_from_show({}) is None


@pytest.mark.parametrize(
    ("listed", "caps"),
    [
        (
            ["completion", "tools", "thinking"],
            Capabilities(tools=True, thinking=True, json_schema=True),
        ),
        (["completion", "vision"], Capabilities(vision=True, json_schema=True)),
        (["embedding"], Capabilities(embeddings=True)),
    ],
)
def test_capabilities_from_show(listed: list[str], caps: Capabilities) -> None:
    assert ollama.capabilities_from_show({"capabilities": listed}) == caps


@given(
    st.lists(st.sampled_from(["completion", "vision", "tools", "thinking", "embedding", "insert"]))
)
def test_capabilities_follow_the_list(listed: list[str]) -> None:
    caps = ollama.capabilities_from_show({"capabilities": listed})
    assert caps.tools == ("tools" in listed) and caps.vision == ("vision" in listed)
    assert caps.thinking == ("thinking" in listed) and caps.embeddings == ("embedding" in listed)
