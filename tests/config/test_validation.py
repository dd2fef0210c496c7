"""modelport.toml is parsed strictly: every error names its key and echoes no secret."""

from __future__ import annotations

import pytest

from modelport.backends import kinds
from modelport.config import BackendConfig, ConfigError, is_cloud, parse_config
from tests.config.helpers import SECRET

# Validation: every message names its key


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    return str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[server\nport = 1\n",
            "modelport.toml: invalid TOML: Expected ']' at the end of a table declaration "
            "(at line 1, column 8)",
        ),
        ("[serve]\nport = 1\n", "modelport.toml: serve: unknown key (did you mean 'server'?)"),
        (
            '[[backends]]\nkind = "vllm"\nmax_concurent = 2\n',
            "modelport.toml: backends[0].max_concurent: unknown key "
            "(did you mean 'max_concurrent'?)",
        ),
        (
            "[discovery]\nzzz = 1\n",
            "modelport.toml: discovery.zzz: unknown key",
        ),
        (
            '[[backends]]\nkind = "vllm"\n[[backends]]\nkind = "ollama"\nmax_concurrent = "8"\n',
            "modelport.toml: backends[1].max_concurrent: expected int, got str",
        ),
        ("[server]\nport = true\n", "modelport.toml: server.port: expected int, got bool"),
        ('[backends]\nkind = "vllm"\n', "modelport.toml: backends: expected array, got table"),
        ("[[backends]]\nname = 'x'\n", "modelport.toml: backends[0].kind: required key missing"),
        ("[server]\nport = 0\n", "modelport.toml: server.port: expected a port in 1..65535, got 0"),
        (
            "[server]\nport = 65536\n",
            "modelport.toml: server.port: expected a port in 1..65535, got 65536",
        ),
        (
            "[discovery]\nports = [9000, 0]\n",
            "modelport.toml: discovery.ports[1]: expected a port in 1..65535, got 0",
        ),
        (
            '[server]\nhost = ""\n',
            "modelport.toml: server.host: expected a host name or address, got ''",
        ),
        (
            "[server]\nmax_body_mb = 0\n",
            "modelport.toml: server.max_body_mb: expected a number > 0, got 0.0",
        ),
        (
            "[server]\nrequest_timeout_s = nan\n",
            "modelport.toml: server.request_timeout_s: expected a number > 0, got nan",
        ),
        (
            "[server]\nshutdown_grace_s = -1\n",
            "modelport.toml: server.shutdown_grace_s: expected a number >= 0, got -1.0",
        ),
        (
            "[discovery]\nrefresh_s = 0\n",
            "modelport.toml: discovery.refresh_s: expected a number > 0, got 0.0",
        ),
        (
            '[server]\nlog_level = "verbose"\n',
            "modelport.toml: server.log_level: expected one of debug, info, warning, error, "
            "critical; got 'verbose'",
        ),
        (
            '[[backends]]\nkind = "vllm"\nmax_concurrent = 0\n',
            "modelport.toml: backends[0].max_concurrent: expected an integer >= 1, got 0",
        ),
        (
            '[[backends]]\nkind = "vllm"\nmax_queue = -1\n',
            "modelport.toml: backends[0].max_queue: expected an integer >= 0, got -1",
        ),
        (
            '[[backends]]\nkind = "vllm"\nqueue_timeout_s = 0\n',
            "modelport.toml: backends[0].queue_timeout_s: expected a number > 0, got 0.0",
        ),
        (
            '[[backends]]\nkind = "vllm"\nurl = "localhost:8000"\n',
            "modelport.toml: backends[0].url: expected an http(s) URL with a host, "
            "got 'localhost:8000'",
        ),
        (
            '[[backends]]\nkind = "vllm"\nurl = "http://"\n',
            "modelport.toml: backends[0].url: expected an http(s) URL with a host, got 'http://'",
        ),
        (
            '[[backends]]\nkind = "vllm"\nurl = "http://h:99999"\n',
            "modelport.toml: backends[0].url: expected an http(s) URL with a host, "
            "got 'http://h:99999'",
        ),
        (
            '[[backends]]\nkind = "vllm"\n[[backends]]\nkind = "vllm"\n',
            "modelport.toml: backends[1].kind: duplicate backend label 'vllm' (also backends[0]); "
            "give each backend its own name",
        ),
        (
            '[[backends]]\nname = "a"\nkind = "vllm"\n[[backends]]\nname = "a"\nkind = "ollama"\n',
            "modelport.toml: backends[1].name: duplicate backend label 'a' (also backends[0]); "
            "give each backend its own name",
        ),
        (
            '[[backends]]\nname = "ollama"\nkind = "vllm"\n[[backends]]\nkind = "ollama"\n',
            "modelport.toml: backends[1].kind: duplicate backend label 'ollama' "
            "(also backends[0]); give each backend its own name",
        ),
        (
            '[[backends]]\nname = "a/b"\nkind = "vllm"\n',
            "modelport.toml: backends[0].name: 'a/b' may not contain '/' "
            "(it separates label and model)",
        ),
        (
            '[[backends]]\nname = ""\nkind = "vllm"\n',
            "modelport.toml: backends[0].name: must not be empty",
        ),
        (
            '[[backends]]\nkind = "openrouter"\n',
            "modelport.toml: backends[0].api_key_env: required for the cloud kind 'openrouter' "
            '(e.g. api_key_env = "OPENROUTER_API_KEY")',
        ),
        (
            '[[backends]]\nkind = "anthropic"\n',
            "modelport.toml: backends[0].api_key_env: required for the cloud kind 'anthropic' "
            '(e.g. api_key_env = "ANTHROPIC_API_KEY")',
        ),
        (
            '[[backends]]\nkind = "anthropic"\nurl = "https://api.anthropic.com/v1"\n',
            "modelport.toml: backends[0].api_key_env: required for the cloud kind 'anthropic' "
            '(e.g. api_key_env = "ANTHROPIC_API_KEY")',
        ),
        (
            '[[backends]]\nkind = "vllm"\nmodels = ["qwen", ""]\n',
            "modelport.toml: backends[0].models[1]: expected a model name, got an empty string",
        ),
        (
            '[aliases]\nchat = "local/qwen"\n',
            "modelport.toml: aliases.chat: expected array of strings, got str",
        ),
        (
            '[aliases]\n"my chat" = ["a", 3]\n',
            'modelport.toml: aliases."my chat"[1]: expected str, got int',
        ),
        ("[aliases]\nchat = []\n", "modelport.toml: aliases.chat: expected at least one model"),
        (
            '[aliases]\nchat = [" "]\n',
            "modelport.toml: aliases.chat[0]: expected a model name, got an empty string",
        ),
        (
            '[aliases]\nchat = ["fast"]\nfast = ["qwen"]\n',
            "modelport.toml: aliases.chat[0]: 'fast' is itself an alias; aliases do not chain",
        ),
        (
            '[[backends]]\nname = "local"\nkind = "vllm"\n[aliases]\n"local/x" = ["qwen"]\n',
            'modelport.toml: aliases."local/x": shadows the explicit route to backend '
            "'local'; pick another name",
        ),
        (
            '[aliases]\n"" = ["qwen"]\n',
            'modelport.toml: aliases."": an alias name must not be empty',
        ),
        ("aliases = 3\n", "modelport.toml: aliases: expected table, got int"),
    ],
)
def test_validation_error_names_the_key(text: str, message: str) -> None:
    assert error_of(text) == message


def test_unknown_kind_lists_the_known_ones() -> None:
    message = error_of('[[backends]]\nkind = "vlm"\n')
    assert (
        message
        == f"modelport.toml: backends[0].kind: unknown kind 'vlm'; known: {', '.join(kinds())}"
    )
    assert "vllm" in message


def test_source_prefixes_messages() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("[server]\nport = 0\n", source="/etc/mp.toml")
    assert str(info.value) == "/etc/mp.toml: server.port: expected a port in 1..65535, got 0"
    assert (info.value.source, info.value.key) == ("/etc/mp.toml", "server.port")
    assert info.value.problem == "expected a port in 1..65535, got 0"


def test_a_key_pasted_as_a_variable_name_is_not_echoed() -> None:
    for text in (
        f'[server]\napi_keys_env = ["{SECRET}"]\n',
        f'[[backends]]\nkind = "openai"\napi_key_env = "{SECRET}"\n',
    ):
        message = error_of(text)
        assert SECRET not in message
        assert message.endswith(
            "expected the name of an environment variable (letters, digits, _), not a key itself"
        )


def test_a_url_password_is_not_echoed_in_errors() -> None:
    message = error_of('[[backends]]\nkind = "vllm"\nurl = "ftp://user:hunter2@h"\n')
    assert message == (
        "modelport.toml: backends[0].url: expected an http(s) URL with a host, "
        "got 'ftp://user:***@h'"
    )


def test_unset_key_variables_are_not_config_errors() -> None:
    config = parse_config(
        '[[backends]]\nkind = "openai"\napi_key_env = "NOT_SET_ANYWHERE"\n', env={}
    )
    assert config.backends[0].api_key_env == "NOT_SET_ANYWHERE"


def test_anthropic_elsewhere_needs_no_key() -> None:
    config = parse_config('[[backends]]\nkind = "anthropic"\nurl = "http://127.0.0.1:8080"\n')
    assert not is_cloud(config.backends[0])
    assert is_cloud(BackendConfig(kind="anthropic"))
    assert is_cloud(BackendConfig(kind="venice", api_key_env="V"))
    assert not is_cloud(BackendConfig(kind="openai-compatible"))


def test_managed_knobs_belong_to_managed_backends() -> None:
    with pytest.raises(ConfigError, match=r'backends\[0\]\.model: only for kind = "managed"'):
        parse_config('[[backends]]\nkind = "vllm"\nmodel = "x.gguf"\n')
    with pytest.raises(ConfigError, match=r"backends\[0\]\.url: a managed engine picks its own"):
        parse_config('[[backends]]\nkind = "managed"\nurl = "http://127.0.0.1:1"\n')


# The per-attempt first-byte limit (issue 11.1): server-wide and per backend, positive.


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[server]\nfirst_byte_timeout_s = 0\n",
            "modelport.toml: server.first_byte_timeout_s: expected a number > 0, got 0.0",
        ),
        (
            '[[backends]]\nkind = "vllm"\nfirst_byte_timeout_s = -1\n',
            "modelport.toml: backends[0].first_byte_timeout_s: expected a number > 0, got -1.0",
        ),
        (
            '[[backends]]\nkind = "vllm"\nfirst_byte_timeout = 5\n',
            "modelport.toml: backends[0].first_byte_timeout: unknown key "
            "(did you mean 'first_byte_timeout_s'?)",
        ),
    ],
)
def test_first_byte_limits_are_checked(text: str, message: str) -> None:
    assert error_of(text) == message


def test_first_byte_limits_default_and_override() -> None:
    config = parse_config(
        "[server]\nfirst_byte_timeout_s = 30\n"
        '[[backends]]\nkind = "vllm"\n'
        '[[backends]]\nkind = "ollama"\nfirst_byte_timeout_s = 240\n'
    )
    assert config.server.first_byte_timeout_s == 30
    assert [b.first_byte_timeout_s for b in config.backends] == [None, 240]
    assert parse_config("").server.first_byte_timeout_s == 120
