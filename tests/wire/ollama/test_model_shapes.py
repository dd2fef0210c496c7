"""wire/ollama/models.py: Ollama's model shapes from what an engine said of a model."""

from __future__ import annotations

import json

import pytest

from modelport.errors import InvalidRequest
from modelport.types import BackendModel, Capabilities
from modelport.wire.ollama import models

# A llama-server /v1/models entry's `meta` (docs/captures, tests/fakes/catalog.py).
LLAMA_SERVER = {
    "id": "gemma.gguf",
    "created": 1764460800,
    "meta": {"n_params": 268098176, "size": 246587904},
}


def test_a_llama_server_entry_gives_size_parameter_count_and_date() -> None:
    model = BackendModel(id="gemma.gguf", context_window=16384, native=LLAMA_SERVER)
    entry = models.tag_entry("gemma.gguf", model)
    assert entry["size"] == 246587904
    assert entry["details"]["parameter_size"] == "268.1M"
    assert entry["details"]["format"] == "gguf"
    assert entry["modified_at"] == "2025-11-30T00:00:00Z"
    shown = json.loads(models.encode_show("gemma.gguf", model))
    assert shown["model_info"] == {
        "general.architecture": "unknown",
        "general.basename": "gemma.gguf",
        "unknown.context_length": 16384,
    }


def test_capabilities_follow_ours_and_an_ollama_list_without_completion() -> None:
    caps = Capabilities(tools=True, vision=True, thinking=True, embeddings=False)
    assert models.capability_words(BackendModel(id="m", capabilities=caps)) == [
        "completion",
        "tools",
        "vision",
        "thinking",
    ]
    embedder = BackendModel(
        id="e", capabilities=Capabilities(embeddings=True), native={"capabilities": ["embedding"]}
    )
    assert models.capability_words(embedder) == ["embedding"]


def test_an_unknown_context_is_left_out_not_invented() -> None:
    info = models.model_info(BackendModel(id="m"))
    assert info == {"general.architecture": "unknown", "general.basename": "m"}


@pytest.mark.parametrize(
    ("body", "name"),
    [(b'{"model": "a"}', "a"), (b'{"name": "b"}', "b"), (b'{"model": "", "name": "c"}', "c")],
)
def test_show_takes_model_or_the_older_name(body: bytes, name: str) -> None:
    assert models.decode_show_request(body) == name


def test_show_without_a_model_is_refused() -> None:
    with pytest.raises(InvalidRequest, match=r"^model: field required$"):
        models.decode_show_request(b"{}")
