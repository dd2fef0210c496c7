"""One rule names a managed engine's model (managed.model_alias): the config's `alias`, else the
bundled model's name, else the GGUF file's stem; the gateway and `connect("managed:PATH")`
both use it."""

from __future__ import annotations

from pathlib import Path

from modelport.backends.managed import BUNDLED_ALIAS, Fleet, model_alias
from modelport.config import BackendConfig
from modelport.gateway.server import managed_backend


def test_the_alias_is_the_bundled_name_or_the_file_stem() -> None:
    assert model_alias(None) == BUNDLED_ALIAS
    assert model_alias(Path("/models/qwen2.5-coder-1.5b-q4_k_m.gguf")) == (
        "qwen2.5-coder-1.5b-q4_k_m"
    )


def test_a_configured_engine_is_named_by_its_file_unless_the_config_names_it() -> None:
    fleet = Fleet(1)
    given = {"kind": "managed", "llama_server": "/opt/llama-server", "model": "/m/coder.gguf"}
    assert managed_backend(BackendConfig(**given), fleet).spec.alias == "coder"
    named = BackendConfig(**given, alias="qwen-coder")
    assert managed_backend(named, fleet).spec.alias == "qwen-coder"
