"""agent.toml: usepod-agent's files load unchanged, and each of its rules is enforced.

The cases named `test_usepod_*` are usepod-agent's own tests/config_parsing.rs, one for one.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from modelport.agent.config import (
    AgentConfigError,
    BackendEntry,
    ModelPrice,
    default_agent_config_path,
    load_agent_config,
    parse_agent_config,
    user_config_path,
)
from tests.agent.samples import USEPOD_EXAMPLE_TOML

# The head every tests/config_parsing.rs case shares (its [operator] and [coordinator]).
HEAD = """
[operator]
display_name = "X"
wallet = "11111111111111111111111111111111"
[coordinator]
url = "wss://x.example/connect"
"""
VLLM = """
[[backends]]
kind = "vllm"
url = "http://localhost:8000"
"""
PRICING = """
[pricing]
default_input_per_1m = 1
default_output_per_1m = 1
"""


def error_of(text: str, *, allow_insecure: bool = False) -> AgentConfigError:
    with pytest.raises(AgentConfigError) as caught:
        parse_agent_config(text, source="agent.toml", allow_insecure=allow_insecure)
    return caught.value


def test_usepod_parses_example_config(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(USEPOD_EXAMPLE_TOML)
    config = load_agent_config(path)
    assert config.source == path
    assert config.operator.display_name == "BlueBoxRig-01"
    assert config.operator.wallet == "11111111111111111111111111111111"
    assert config.operator.contact_email == "ops@example.com"
    assert config.coordinator_url == "wss://api.usepod.ai/provider/connect"
    assert config.enrollment_code == "POD-ENROLL-7K9X4LM2"
    assert config.key_path == "~/.usepod-agent/identity.key"
    assert config.backends == (
        BackendEntry(kind="vllm", url="http://localhost:8000"),
        BackendEntry(kind="openrouter", api_key_env="OPENROUTER_API_KEY", markup=0.05),
    )
    assert config.pricing.default_input_per_1m == 500_000
    assert config.pricing.default_output_per_1m == 750_000
    assert config.pricing.models == {
        "meta-llama/Llama-3.3-70B-Instruct": ModelPrice(300_000, 450_000),
        "mistralai/Mistral-Large": ModelPrice(800_000, 1_200_000),
    }
    assert config.pricing.price("mistralai/Mistral-Large") == ModelPrice(800_000, 1_200_000)
    assert config.pricing.price("other") == ModelPrice(500_000, 750_000)
    assert config.limits.max_concurrent == 8
    assert config.limits.max_tokens_per_minute == 200_000
    assert config.observability.prometheus_addr == "127.0.0.1:9090"
    assert config.observability.log_level == "info"


def test_usepod_rejects_ws_without_allow_insecure() -> None:
    text = HEAD.replace("wss://x.example/connect", "ws://localhost:8080") + VLLM + PRICING
    error = error_of(text)
    assert "wss" in str(error)
    assert str(error) == (
        "agent.toml: coordinator.url: must be wss:// in production "
        "(use --allow-insecure to allow ws://)"
    )
    assert parse_agent_config(text, allow_insecure=True).coordinator_url == "ws://localhost:8080"


def test_usepod_rejects_duplicate_backends() -> None:
    error = error_of(HEAD + VLLM + VLLM + PRICING)
    assert "duplicate" in str(error).lower()
    assert str(error) == (
        "agent.toml: backends[1]: duplicate backend entry for vllm / http://localhost:8000 "
        "(the same as backends[0])"
    )


def test_usepod_rejects_max_concurrent_out_of_range() -> None:
    error = error_of(HEAD + VLLM + PRICING + "[limits]\nmax_concurrent = 999\n")
    assert str(error) == "agent.toml: limits.max_concurrent: must be in [1, 256], got 999"
    error = error_of(HEAD + VLLM + PRICING + "[limits]\nmax_concurrent = 0\n")
    assert str(error) == "agent.toml: limits.max_concurrent: must be in [1, 256], got 0"
    for edge in (1, 256):
        text = HEAD + PRICING + f"[limits]\nmax_concurrent = {edge}\n"
        assert parse_agent_config(text).limits.max_concurrent == edge


def test_usepod_requires_default_pricing() -> None:
    text = HEAD + VLLM + PRICING.replace("= 1", "= 0")
    error = error_of(text)
    assert "default_" in str(error)
    assert str(error) == "agent.toml: pricing.default_input_per_1m: must be > 0"
    error = error_of(
        HEAD + PRICING.replace("default_output_per_1m = 1", "default_output_per_1m = 0")
    )
    assert str(error) == "agent.toml: pricing.default_output_per_1m: must be > 0"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (VLLM + PRICING, "coordinator: required key missing"),
        ("[coordinator]\n" + PRICING, "coordinator.url: required key missing"),
        (HEAD, "pricing: required key missing"),
        (HEAD + "[pricing]\ndefault_input_per_1m = 1\n", "pricing.default_output_per_1m: "),
        (HEAD + PRICING + '[pricing.models."m"]\ninput_per_1m = 1\n', "pricing.models.m.output"),
    ],
)
def test_required_tables_and_keys(text: str, message: str) -> None:
    assert message in str(error_of(text))


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://x.example/connect", "coordinator.url: scheme must be wss or ws, got 'https'"),
        ("x.example/connect", "coordinator.url: scheme must be wss or ws, got 'none'"),
        ("wss://x.example:99999/connect", "coordinator.url: is not a valid URL: "),
        ("wss:///connect", "coordinator.url: is not a valid URL: it names no host"),
    ],
)
def test_coordinator_url_rules(url: str, message: str) -> None:
    text = HEAD.replace("wss://x.example/connect", url) + PRICING
    assert message in str(error_of(text, allow_insecure=True))


@pytest.mark.parametrize("kind", ["vllm", "llamacpp", "lmstudio", "ollama", "localai"])
def test_local_kinds_need_a_url(kind: str) -> None:
    error = error_of(HEAD + f'[[backends]]\nkind = "{kind}"\n' + PRICING)
    assert str(error) == f"agent.toml: backends[0].url: is required for kind {kind!r}"


@pytest.mark.parametrize("kind", ["openrouter", "venice", "openai", "anthropic"])
def test_byok_kinds_need_a_key_variable(kind: str) -> None:
    error = error_of(HEAD + f'[[backends]]\nkind = "{kind}"\n' + PRICING)
    assert str(error) == f"agent.toml: backends[0].api_key_env: is required for kind {kind!r}"


def test_byok_duplicates_are_kind_and_variable() -> None:
    entry = '[[backends]]\nkind = "venice"\napi_key_env = "K"\n'
    assert "duplicate backend entry for venice / K" in str(error_of(HEAD + entry + entry + PRICING))
    other = entry.replace('"K"', '"K2"')
    assert len(parse_agent_config(HEAD + entry + other + PRICING).backends) == 2


def test_unknown_kind_is_refused() -> None:
    error = error_of(HEAD + '[[backends]]\nkind = "tgi"\nurl = "http://h:1"\n' + PRICING)
    assert str(error).startswith("agent.toml: backends[0].kind: unknown kind 'tgi' (kinds: vllm,")


def test_modelport_kinds_usepod_lacks_are_served() -> None:
    text = (
        HEAD
        + '[[backends]]\nkind = "localai"\nurl = "http://127.0.0.1:8080"\n'
        + '[[backends]]\nkind = "openai-compatible"\nurl = "http://127.0.0.1:9000"\n'
        + '[[backends]]\nkind = "anthropic"\napi_key_env = "ANTHROPIC_API_KEY"\n'
        + PRICING
    )
    kinds = [b.kind for b in parse_agent_config(text).backends]
    assert kinds == ["localai", "openai-compatible", "anthropic"]


def test_engine_url_must_be_http() -> None:
    error = error_of(HEAD + '[[backends]]\nkind = "vllm"\nurl = "localhost:8000"\n' + PRICING)
    assert str(error) == (
        "agent.toml: backends[0].url: is not a valid URL: expected http(s)://host[:port]"
    )


def test_unknown_backend_field_is_refused() -> None:
    error = error_of(HEAD + VLLM + "max_concurent = 3\n" + PRICING)
    assert str(error) == (
        "agent.toml: backends[0].max_concurent: unknown key ([[backends]] takes kind, url, "
        "api_key_env, markup, models)"
    )


def test_backend_field_types() -> None:
    text = HEAD + VLLM + 'models = ["a", "b"]\nmarkup = 1\n' + PRICING
    (entry,) = parse_agent_config(text).backends
    assert entry.models == ("a", "b")
    assert entry.markup == 1.0
    error = error_of(HEAD + VLLM + 'models = "a"\n' + PRICING)
    assert str(error) == "agent.toml: backends[0].models: expected array of strings, got str"


@pytest.mark.parametrize(
    ("tail", "message"),
    [
        ("[limits]\nmax_concurrent = 2.0\n", "limits.max_concurrent: expected int, got float"),
        ("[limits]\nmax_concurrent = true\n", "limits.max_concurrent: expected int, got bool"),
        ("[limits]\nmax_tokens_per_minute = -1\n", "max_tokens_per_minute: must be >= 0, got -1"),
        ("[observability]\nprometheus_addr = 9090\n", "prometheus_addr: expected str, got int"),
        ('[observability]\nprometheus_addr = "9090"\n', "expected HOST:PORT, got '9090'"),
        ("[identity]\nkey_path = 1\n", "identity.key_path: expected str, got int"),
        ("limits = 3\n", "limits: expected table, got int"),
    ],
)
def test_types_and_ranges(tail: str, message: str) -> None:
    # A top-level key must come before the first table header.
    text = tail + HEAD + PRICING if tail.startswith("limits =") else HEAD + PRICING + tail
    assert message in str(error_of(text))


def test_defaults_when_left_out() -> None:
    config = parse_agent_config(HEAD.replace("[operator]", "[operator]\n") + PRICING)
    assert config.key_path == "~/.usepod-agent/identity.key"
    assert config.enrollment_code is None
    assert config.backends == ()
    assert config.limits.max_concurrent == 8
    assert config.limits.max_tokens_per_minute is None
    assert config.observability.prometheus_addr == "127.0.0.1:9090"
    assert config.modelport.rediscover_s == 300.0
    assert config.modelport.discover is True


def test_unknown_keys_outside_backends_are_ignored_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """serde ignores them (only Backend has deny_unknown_fields): so do we, but say so."""
    text = HEAD + 'host_token = "abc"\n' + PRICING + "[telemetry]\non = true\n"
    with caplog.at_level(logging.WARNING, logger="modelport.agent"):
        config = parse_agent_config(text, source="agent.toml")
    assert config.coordinator_url == "wss://x.example/connect"
    assert "agent.toml: coordinator.host_token: unknown key, ignored" in caplog.text
    assert "agent.toml: telemetry: unknown key, ignored" in caplog.text


def test_modelport_table(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(
        HEAD
        + PRICING
        + "[modelport]\nrediscover_s = 30\ndiscover = false\n"
        + 'ledger_path = "ledger.sqlite"\nfirst_byte_timeout_s = 2.5\n'
    )
    settings = load_agent_config(path).modelport
    assert settings.rediscover_s == 30.0
    assert settings.discover is False
    assert settings.ledger_path == tmp_path / "ledger.sqlite"
    assert settings.first_byte_timeout_s == 2.5


def test_modelport_table_refuses_unknown_keys_and_bad_values() -> None:
    error = error_of(HEAD + PRICING + "[modelport]\nrediscover = 30\n")
    assert str(error) == (
        "agent.toml: modelport.rediscover: unknown key (did you mean 'rediscover_s'? "
        "[modelport] takes rediscover_s, discover, ledger_path, first_byte_timeout_s)"
    )
    error = error_of(HEAD + PRICING + "[modelport]\nrediscover_s = 0\n")
    assert str(error) == (
        "agent.toml: modelport.rediscover_s: must be a number of seconds > 0, got 0"
    )
    error = error_of(HEAD + PRICING + '[modelport]\ndiscover = "yes"\n')
    assert str(error) == "agent.toml: modelport.discover: expected bool, got str"


def test_invalid_toml_names_the_file() -> None:
    assert str(error_of("[coordinator\n")).startswith("agent.toml: invalid TOML: ")


def test_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """config.rs default_config_path: the user config dir first, then ./agent.toml."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    with pytest.raises(AgentConfigError) as caught:
        load_agent_config()
    assert str(caught.value) == (
        f"no agent.toml found; pass --config or place one at "
        f"{tmp_path / 'xdg' / 'usepod-agent' / 'agent.toml'} or ./agent.toml"
    )
    (work / "agent.toml").write_text(HEAD + PRICING)
    assert default_agent_config_path() == work / "agent.toml"
    assert load_agent_config().source == work / "agent.toml"
    user = user_config_path()
    assert user == tmp_path / "xdg" / "usepod-agent" / "agent.toml"
    user.parent.mkdir(parents=True)
    user.write_text(HEAD.replace("x.example", "user.example") + PRICING)
    assert load_agent_config().coordinator_url == "wss://user.example/connect"


def test_unreadable_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(AgentConfigError) as caught:
        load_agent_config(tmp_path / "missing.toml")
    assert (
        str(caught.value) == f"{tmp_path / 'missing.toml'}: cannot read: No such file or directory"
    )


def test_readme_agent_toml_loads(tmp_path: Path) -> None:
    """The README's agent.toml (section "Agent", "Config") is a file that loads as shown."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("## Agent\n") :]
    section = section[section.index("### Config\n") :]
    block = section[section.index("```toml\n") + len("```toml\n") :]
    path = tmp_path / "agent.toml"
    path.write_text(block[: block.index("```")])
    config = load_agent_config(path)
    assert [b.kind for b in config.backends] == ["vllm", "openrouter"]
    assert config.modelport.ledger_path == tmp_path / "agent-ledger.sqlite"
    assert config.pricing.price("meta-llama/Llama-3.3-70B-Instruct") == ModelPrice(300_000, 450_000)
