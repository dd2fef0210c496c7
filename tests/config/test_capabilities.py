"""Capabilities in config (issue 10, points 5 and 9): per backend, per model, and a managed
engine's embeddings; checked key by key like the rest of the file, and shown by
`modelport config check`."""

from __future__ import annotations

import pytest

from modelport.config import ConfigError, parse_config, render_check

VLLM = '[[backends]]\nname = "gpu"\nkind = "vllm"\n'


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    return str(info.value)


def test_capabilities_per_backend_and_per_model_parse() -> None:
    config = parse_config(
        VLLM + "capabilities = { vision = false, embeddings = false }\n"
        '[backends.model_capabilities."Qwen/Qwen2.5-VL-7B-Instruct"]\n'
        "vision = true\n"
    )
    (gpu,) = config.backends
    assert gpu.capabilities.overrides() == {"vision": False, "embeddings": False}
    assert {name: c.overrides() for name, c in gpu.model_capabilities.items()} == {
        "Qwen/Qwen2.5-VL-7B-Instruct": {"vision": True}
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            VLLM + "capabilities = { visoin = true }\n",
            "modelport.toml: backends[0].capabilities.visoin: unknown key (did you mean 'vision'?)",
        ),
        (
            VLLM + 'capabilities = { vision = "yes" }\n',
            "modelport.toml: backends[0].capabilities.vision: expected bool, got str",
        ),
        (
            VLLM + "model_capabilities = { qwen = true }\n",
            "modelport.toml: backends[0].model_capabilities.qwen: expected table, got bool",
        ),
        (
            VLLM + 'models = ["qwen"]\nmodel_capabilities = { llava = { vision = true } }\n',
            "modelport.toml: backends[0].model_capabilities.llava: 'llava' is not in this "
            "backend's models, so it is never served; add it there or remove this table",
        ),
        (
            VLLM + 'model_capabilities = { " " = { vision = true } }\n',
            'modelport.toml: backends[0].model_capabilities." ": expected a model name, '
            "got an empty string",
        ),
        (
            VLLM + "embeddings = true\n",
            'modelport.toml: backends[0].embeddings: only for kind = "managed"',
        ),
        (
            '[[backends]]\nkind = "managed"\ncapabilities = { embeddings = true }\n',
            "modelport.toml: backends[0].capabilities.embeddings: a managed engine serves "
            "embeddings only when started with them: set embeddings = true instead",
        ),
    ],
)
def test_capability_mistakes_name_the_key(text: str, message: str) -> None:
    assert error_of(text) == message


def test_config_check_shows_what_config_says_models_can_do() -> None:
    config = parse_config(
        '[server]\nledger = "off"\n'
        + VLLM
        + "capabilities = { vision = true }\n"
        + '[backends.model_capabilities."Qwen/Qwen3-0.6B"]\nvision = false\nthinking = true\n'
        + '[[backends]]\nname = "plain"\nkind = "localai"\n'
        + '[[backends]]\nname = "embedder"\nkind = "managed"\nembeddings = true\n'
        + '[[backends]]\nname = "chatter"\nkind = "managed"\nalias = "c"\n'
    )
    text = render_check(config, None, env={})
    assert (
        "    capabilities: vision yes (config), the rest as the engine reports\n"
        "      Qwen/Qwen3-0.6B: vision no, thinking yes (config), the rest as the engine "
        "reports\n"
    ) in text
    plain = text[text.index("  plain (localai)") : text.index("  embedder")]
    assert "capabilities" not in plain  # nothing said: all as the engine reports
    assert "    embeddings: on (llama-server --embeddings)\n" in text
    assert "    embeddings: off (embeddings = true starts it with --embeddings)\n" in text
