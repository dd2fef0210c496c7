"""modelport.toml: finding it, parsing it strictly, and reporting what `serve` would do."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelport.backends import kinds
from modelport.config import (
    CONFIG_ENV,
    BackendConfig,
    Config,
    ConfigError,
    DiscoveryConfig,
    ServerConfig,
    api_keys,
    backend_key,
    discovery_ports,
    find_config,
    is_cloud,
    is_loopback,
    ledger_path,
    load_config,
    parse_config,
    render_check,
    requires_keys,
    with_overrides,
)

EXAMPLE = """\
[server]
host = "127.0.0.1"
port = 7878
api_keys_env = ["MODELPORT_API_KEY"]
max_body_mb = 32
request_timeout_s = 600
shutdown_grace_s = 10
ledger = ""
log_level = "info"

[discovery]
enabled = true
refresh_s = 30
host = "127.0.0.1"
ports = []

[[backends]]
name = "local"
kind = "vllm"
url = "http://127.0.0.1:8000"
api_key_env = "VLLM_KEY"
models = ["qwen"]
max_concurrent = 8
max_queue = 64
queue_timeout_s = 30
priority = 0

[aliases]
chat = ["local/qwen", "openrouter/meta-llama/llama-3.1-8b-instruct"]
"""

SECRET = "sk-test-0123456789abcdef"


@pytest.fixture
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point platformdirs at empty temporary config and data dirs."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    return str(info.value)


# Parsing


def test_parses_the_full_example() -> None:
    config = parse_config(EXAMPLE)
    assert config == Config(
        server=ServerConfig(
            host="127.0.0.1",
            port=7878,
            api_keys_env=("MODELPORT_API_KEY",),
            max_body_mb=32,
            request_timeout_s=600,
            shutdown_grace_s=10,
            ledger="",
            log_level="info",
        ),
        discovery=DiscoveryConfig(enabled=True, refresh_s=30, host="127.0.0.1", ports=()),
        backends=(
            BackendConfig(
                name="local",
                kind="vllm",
                url="http://127.0.0.1:8000",
                api_key_env="VLLM_KEY",
                models=("qwen",),
                max_concurrent=8,
                max_queue=64,
                queue_timeout_s=30,
                priority=0,
            ),
        ),
        aliases={"chat": ("local/qwen", "openrouter/meta-llama/llama-3.1-8b-instruct")},
    )
    assert config.backends[0].label == "local"
    assert config.backends[0].spec == "vllm:http://127.0.0.1:8000"
    assert config.server.max_body_bytes == 32 * 1024 * 1024


def test_empty_text_is_all_defaults() -> None:
    config = parse_config("")
    assert config == Config()
    assert (config.server.host, config.server.port) == ("127.0.0.1", 7878)
    assert config.server.api_keys_env == ("MODELPORT_API_KEY",)
    assert config.server.max_body_mb == 32
    assert config.server.request_timeout_s == 600
    assert config.server.shutdown_grace_s == 10
    assert config.server.log_level == "info"
    assert config.discovery == DiscoveryConfig(enabled=True, refresh_s=30, host="127.0.0.1")
    assert config.backends == ()
    assert config.aliases == {}


def test_backend_defaults_and_label_from_kind() -> None:
    config = parse_config('[[backends]]\nkind = "ollama"\n')
    backend = config.backends[0]
    assert backend == BackendConfig(kind="ollama")
    assert (backend.label, backend.spec, backend.url, backend.name) == (
        "ollama",
        "ollama",
        None,
        None,
    )
    assert (backend.max_concurrent, backend.max_queue) == (8, 64)
    assert (backend.queue_timeout_s, backend.priority, backend.models) == (30, 0, ())


def test_no_file_anywhere_means_defaults(dirs: Path) -> None:
    assert load_config(None, env={}) == (Config(), None)


def test_load_config_reads_the_file_and_names_it_in_errors(dirs: Path) -> None:
    good = write(dirs / "good.toml", EXAMPLE)
    assert load_config(good, env={}) == (parse_config(EXAMPLE), good)
    bad = write(dirs / "bad.toml", "[server]\nport = 0\n")
    with pytest.raises(ConfigError) as info:
        load_config(bad, env={})
    assert str(info.value) == f"{bad}: server.port: expected a port in 1..65535, got 0"


# Finding the file


def test_find_config_precedence(dirs: Path) -> None:
    default = write(dirs / "xdg-config" / "modelport" / "modelport.toml", "")
    from_env = write(dirs / "env.toml", "")
    explicit = write(dirs / "explicit.toml", "")
    env = {CONFIG_ENV: str(from_env)}
    assert find_config(explicit, env) == explicit
    assert find_config(str(explicit), env) == explicit
    assert find_config(None, env) == from_env
    assert find_config(None, {}) == default
    assert find_config(None, {CONFIG_ENV: ""}) == default


def test_find_config_default_missing_is_none(dirs: Path) -> None:
    assert find_config(None, {}) is None


def test_find_config_named_file_must_exist(dirs: Path) -> None:
    missing = dirs / "nope.toml"
    with pytest.raises(ConfigError) as info:
        find_config(missing, {})
    assert str(info.value) == f"--config: config file {str(missing)!r} does not exist"
    with pytest.raises(ConfigError) as info:
        find_config(None, {CONFIG_ENV: str(missing)})
    assert str(info.value) == f"MODELPORT_CONFIG: config file {str(missing)!r} does not exist"
    with pytest.raises(ConfigError) as info:
        find_config(dirs, {})
    assert str(info.value) == f"--config: config file {str(dirs)!r} is not a file"


def test_explicit_path_wins_even_when_env_points_nowhere(dirs: Path) -> None:
    explicit = write(dirs / "explicit.toml", "")
    assert find_config(explicit, {CONFIG_ENV: str(dirs / "nope.toml")}) == explicit


# Validation: every message names its key


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


# Keys


def test_api_keys_from_several_variables_and_comma_lists() -> None:
    config = Config(server=ServerConfig(api_keys_env=("MAIN_KEY", "TEAM_KEYS", "UNSET", "EMPTY")))
    env = {"MAIN_KEY": "k-main", "TEAM_KEYS": " k-a , k-b,,k-c ", "EMPTY": ""}
    assert api_keys(config, env) == {
        "k-main": "MAIN_KEY",
        "k-a": "TEAM_KEYS#1",
        "k-b": "TEAM_KEYS#2",
        "k-c": "TEAM_KEYS#3",
    }


def test_api_keys_first_variable_wins_a_shared_value() -> None:
    config = Config(server=ServerConfig(api_keys_env=("A", "B")))
    assert api_keys(config, {"A": "same", "B": "same,other"}) == {"same": "A", "other": "B#2"}


def test_api_keys_none_configured_or_set() -> None:
    assert api_keys(Config(server=ServerConfig(api_keys_env=())), {"MODELPORT_API_KEY": "x"}) == {}
    assert api_keys(Config(), {}) == {}
    assert api_keys(Config(), {"MODELPORT_API_KEY": "x"}) == {"x": "MODELPORT_API_KEY"}


def test_backend_key() -> None:
    configured = BackendConfig(kind="openai", api_key_env="WORK_OPENAI")
    assert backend_key(configured, {"WORK_OPENAI": "k", "OPENAI_API_KEY": "other"}) == "k"
    # "" keeps the backend from falling back to OPENAI_API_KEY.
    assert backend_key(configured, {"OPENAI_API_KEY": "other"}) == ""
    assert backend_key(BackendConfig(kind="vllm"), {"OPENAI_API_KEY": "other"}) is None


# Overrides and the loopback rule


def test_with_overrides() -> None:
    config = parse_config(EXAMPLE)
    moved = with_overrides(config, host="0.0.0.0", port=9000)
    assert (moved.server.host, moved.server.port) == ("0.0.0.0", 9000)
    assert moved.server.api_keys_env == config.server.api_keys_env
    assert moved.backends == config.backends
    assert (config.server.host, config.server.port) == ("127.0.0.1", 7878)
    assert with_overrides(config) == config
    assert with_overrides(config, port=1).server.host == "127.0.0.1"


def test_with_overrides_checks_values() -> None:
    with pytest.raises(ConfigError) as info:
        with_overrides(Config(), port=70000)
    assert str(info.value) == "--port: expected a port in 1..65535, got 70000"
    with pytest.raises(ConfigError) as info:
        with_overrides(Config(), host="")
    assert str(info.value) == "--host: expected a host name or address, got ''"


def test_requires_keys_off_loopback() -> None:
    open_all = with_overrides(Config(), host="0.0.0.0")
    assert requires_keys(open_all, {}) == (
        "refusing to serve on 0.0.0.0 without an API key: set MODELPORT_API_KEY "
        "(server.api_keys_env), or bind 127.0.0.1"
    )
    assert requires_keys(open_all, {"MODELPORT_API_KEY": ""}) is not None
    assert requires_keys(open_all, {"MODELPORT_API_KEY": SECRET}) is None


def test_requires_keys_without_any_key_variable() -> None:
    config = Config(server=ServerConfig(host="0.0.0.0", api_keys_env=()))
    assert requires_keys(config, {"MODELPORT_API_KEY": SECRET}) == (
        "refusing to serve on 0.0.0.0 without an API key: name a key variable in "
        'server.api_keys_env (e.g. ["MODELPORT_API_KEY"]) and set it, or bind 127.0.0.1'
    )


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.0.0.2", "127.255.0.9", "::1", "[::1]", "localhost"]
)
def test_loopback_needs_no_keys(host: str) -> None:
    assert is_loopback(host)
    assert requires_keys(with_overrides(Config(), host=host), {}) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5", "10.0.0.1", "example.com"])
def test_other_hosts_need_keys(host: str) -> None:
    assert not is_loopback(host)
    assert requires_keys(with_overrides(Config(), host=host), {}) is not None


# Ledger and discovery


def test_ledger_path(dirs: Path) -> None:
    assert ledger_path(Config()) == dirs / "xdg-data" / "modelport" / "usage.sqlite3"
    assert ledger_path(parse_config('[server]\nledger = "off"\n')) is None
    assert ledger_path(parse_config('[server]\nledger = "/var/mp.db"\n')) == Path("/var/mp.db")


def test_relative_ledger_is_next_to_the_config_file(dirs: Path) -> None:
    path = write(dirs / "conf" / "modelport.toml", '[server]\nledger = "data/usage.db"\n')
    config, _ = load_config(path, env={})
    assert ledger_path(config) == dirs / "conf" / "data" / "usage.db"


def test_discovery_ports_add_extras_once() -> None:
    config = parse_config("[discovery]\nports = [9999, 8080, 9999]\n")
    assert discovery_ports(config) == (11434, 8080, 9931, 8000, 1234, 9999)


def test_copied_constants_match_their_sources() -> None:
    from modelport import config as module
    from modelport.backends import anthropic
    from modelport.discovery import DEFAULT_PORTS

    assert module.ANTHROPIC_URL == anthropic.DEFAULT_URL
    assert module.ANTHROPIC_KEY_ENV == anthropic.API_KEY_ENV
    assert module.DISCOVERY_PORTS == DEFAULT_PORTS


# render_check


def test_render_check_of_the_example(dirs: Path) -> None:
    path = write(dirs / "modelport.toml", EXAMPLE)
    config, found = load_config(path, env={})
    env = {"MODELPORT_API_KEY": f"{SECRET},{SECRET}-2", "VLLM_KEY": "vllm-secret-value"}
    text = render_check(config, found, env)
    assert text == (
        f"config: {path}\n"
        "listen: http://127.0.0.1:7878\n"
        "auth: on\n"
        "  MODELPORT_API_KEY: set (2 keys)\n"
        "body cap: 32 MB\n"
        "request timeout: 600 s\n"
        "shutdown grace: 10 s\n"
        f"ledger: {dirs / 'xdg-data' / 'modelport' / 'usage.sqlite3'}\n"
        "log level: info\n"
        "discovery: on, host 127.0.0.1, ports 11434, 8080, 9931, 8000, 1234, every 30 s\n"
        "backends: 1\n"
        "  local (vllm)\n"
        "    url: http://127.0.0.1:8000\n"
        "    key: VLLM_KEY (set)\n"
        "    models: qwen\n"
        "    limits: max_concurrent 8, max_queue 64, queue_timeout_s 30\n"
        "    priority: 0\n"
        "aliases:\n"
        "  chat -> local/qwen, openrouter/meta-llama/llama-3.1-8b-instruct\n"
        "embedded engine: not used (backends are configured)\n"
    )
    assert SECRET not in text
    assert "vllm-secret-value" not in text


def test_render_check_defaults_and_refusal(dirs: Path) -> None:
    config = with_overrides(Config(), host="0.0.0.0")
    text = render_check(config, None, {})
    assert text.startswith("no config file: defaults\nlisten: http://0.0.0.0:7878\n")
    assert "auth: off (no key variable is set)\n  MODELPORT_API_KEY: not set\n" in text
    assert "  serve would not start: refusing to serve on 0.0.0.0" in text
    assert "backends: none configured\n" in text
    assert text.endswith(
        "aliases: none\nembedded engine: served as gemma-3-270m when discovery finds no engine\n"
    )


def test_render_check_backends_never_show_secrets() -> None:
    config = parse_config(
        "[server]\n"
        'api_keys_env = ["GW_KEY"]\n'
        'ledger = "off"\n'
        "[discovery]\n"
        "enabled = false\n"
        "[[backends]]\n"
        'kind = "openrouter"\n'
        'api_key_env = "OR_KEY"\n'
        "priority = 5\n"
        "[[backends]]\n"
        'kind = "anthropic"\n'
        'url = "http://me:hunter2@127.0.0.1:8080"\n'
        "[[backends]]\n"
        'kind = "openai"\n'
        'api_key_env = "MISSING_KEY"\n'
        "[[backends]]\n"
        'kind = "ollama"\n'
        "[[backends]]\n"
        'kind = "mock"\n'
    )
    env = {
        "GW_KEY": SECRET,
        "OR_KEY": "or-secret",
        "ANTHROPIC_API_KEY": "ant-secret",
        "OLLAMA_HOST": "10.0.0.5:11434",
    }
    text = render_check(config, None, env)
    for secret in (SECRET, "or-secret", "ant-secret", "hunter2"):
        assert secret not in text
    assert "  GW_KEY: set\n" in text
    assert "ledger: off\n" in text
    assert "discovery: off\n" in text
    assert "  openrouter (openrouter, cloud)\n    url: default (https://openrouter.ai)\n" in text
    assert "    key: OR_KEY (set)\n" in text
    assert "    priority: 5\n" in text
    assert "  anthropic (anthropic)\n    url: http://me:***@127.0.0.1:8080\n" in text
    assert "    key: none configured; the backend reads ANTHROPIC_API_KEY (set)\n" in text
    assert "    key: MISSING_KEY (not set: its requests will fail with AuthError)\n" in text
    assert "    url: default, from OLLAMA_HOST (10.0.0.5:11434)\n" in text
    assert "    url: none (scripted in-process backend)\n" in text
    assert "    models: all it lists\n" in text


def test_the_readme_config_example_is_valid_and_checks() -> None:
    """The example users copy must parse, and `config check` must describe every part."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    start = readme.index("```toml\n[server]") + len("```toml\n")
    example = readme[start : readme.index("```", start)]
    config = parse_config(example)
    assert [b.label for b in config.backends] == ["local", "openrouter", "coder"]
    coder = config.backends[2]
    assert (coder.kind, coder.alias, coder.ctx_size, coder.idle_unload_s) == (
        "managed",
        "qwen-coder",
        8192,
        600,
    )
    text = render_check(config, None, env={"VLLM_KEY": "sekrit-value"})
    assert "ctx_size 8192 over 2 slots (4096 per request); unload: after 600 s idle" in text
    assert "served as qwen-coder" in text
    assert "sekrit-value" not in text


def test_managed_knobs_belong_to_managed_backends() -> None:
    with pytest.raises(ConfigError, match=r'backends\[0\]\.model: only for kind = "managed"'):
        parse_config('[[backends]]\nkind = "vllm"\nmodel = "x.gguf"\n')
    with pytest.raises(ConfigError, match=r"backends\[0\]\.url: a managed engine picks its own"):
        parse_config('[[backends]]\nkind = "managed"\nurl = "http://127.0.0.1:1"\n')
