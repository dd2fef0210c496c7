"""The real `modelport agent ...` commands, run as subprocesses on files in tmp_path.

`run` and `status` call other helpers' modules (modelport.agent.runner, .status); until
they are merged, a small stand-in is put in sys.modules by the `python -c` shim below, so
the command's own part (options, config, identity, signals) is what is tested.
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from modelport.agent.config import load_agent_config
from modelport.agent.identity import load_or_create
from tests.agent.samples import USEPOD_EXAMPLE_TOML
from tests.fakes import FakeEngine
from tests.fakes.pairing import FakePairing

TIMEOUT = 30

# `python -c SHIM agent ...`: the CLI with stand-ins for the runner and status modules.
SHIM = """
import asyncio, sys, types
import modelport.agent

STUBBORN = "--stubborn" in sys.argv  # a runner that does not stop when asked
runner = types.ModuleType("modelport.agent.runner")
async def run_agent(config, identity, *, allow_insecure=False, stop=None):
    print("running", config.coordinator_url, identity.public_key_b64, allow_insecure,
          flush=True)
    try:
        await (asyncio.Event().wait() if STUBBORN else stop.wait())
        print("stopped", flush=True)
    finally:
        print("finally", flush=True)
runner.run_agent = run_agent
status = types.ModuleType("modelport.agent.status")
status.render_status = lambda config: f"status of {config.coordinator_url}"
sys.modules["modelport.agent.runner"] = runner
sys.modules["modelport.agent.status"] = status
sys.argv = ["modelport", *[a for a in sys.argv[1:] if a != "--stubborn"]]
from modelport.cli import main
main()
"""


def env_for(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), PYTHONUNBUFFERED="1")
    env.pop("OPENROUTER_API_KEY", None)
    return env


def agent(tmp_path: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SHIM, "agent", *args],
        env=env_for(tmp_path / "home"),
        cwd=cwd or tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def example(tmp_path: Path, text: str = USEPOD_EXAMPLE_TOML) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text.replace("~/.usepod-agent/identity.key", str(tmp_path / "id.key")))
    return path


def test_validate_usepod_example(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(USEPOD_EXAMPLE_TOML)
    done = agent(tmp_path, "validate", "--config", str(path))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "ok: parsed 2 backend(s)"
    assert f"config:       {path}" in lines
    assert "coordinator:  wss://api.usepod.ai/provider/connect" in lines
    assert f"identity:     {tmp_path / 'home' / '.usepod-agent' / 'identity.key'}" in lines
    assert "  vllm              http://localhost:8000" in lines
    assert "  openrouter        key from $OPENROUTER_API_KEY (not set here), markup 0.05" in lines
    # validate touches neither the network nor the identity.
    assert not (tmp_path / "home" / ".usepod-agent").exists()


def test_validate_error_exits_1_naming_file_and_key(tmp_path: Path) -> None:
    path = example(tmp_path, USEPOD_EXAMPLE_TOML.replace("wss://", "ws://"))
    done = agent(tmp_path, "-c", str(path), "validate")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.strip() == (
        f"error: {path}: coordinator.url: must be wss:// in production "
        "(use --allow-insecure to allow ws://)"
    )
    # The global options work after the command too (clap's `global = true`).
    assert agent(tmp_path, "validate", "-c", str(path), "--allow-insecure").returncode == 0
    assert agent(tmp_path, "--allow-insecure", "-c", str(path), "validate").returncode == 0


def test_validate_lookup_order(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    done = agent(tmp_path, "validate", cwd=work)
    assert done.returncode == 1
    user = tmp_path / "home" / ".config" / "usepod-agent" / "agent.toml"
    assert done.stderr.strip() == (
        f"error: no agent.toml found; pass --config or place one at {user} or ./agent.toml"
    )
    (work / "agent.toml").write_text(USEPOD_EXAMPLE_TOML)
    assert f"config:       {work / 'agent.toml'}" in agent(tmp_path, "validate", cwd=work).stdout
    user.parent.mkdir(parents=True)
    user.write_text(USEPOD_EXAMPLE_TOML)
    assert f"config:       {user}" in agent(tmp_path, "validate", cwd=work).stdout


def test_enroll_prints_the_identity_of_a_usepod_key_file(tmp_path: Path) -> None:
    seed = bytes(range(100, 132))
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    public_b64 = base64.b64encode(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
    key = tmp_path / "id.key"
    key.write_text(
        "-----BEGIN USEPOD AGENT KEY-----\nversion: 1\ncreated: 2026-01-02T03:04:05Z\n"
        f"secret: {base64.b64encode(seed).decode()}\npublic: {public_b64}\n"
        "provider_id: prov-9\n-----END USEPOD AGENT KEY-----\n"
    )
    key.chmod(0o600)
    done = agent(tmp_path, "enroll", "-c", str(example(tmp_path)))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"public_key: {public_b64}",
        "provider_id: prov-9",
        f"key_path: {key}",
        "enrollment_code: set in agent.toml (not shown)",
    ]
    assert "POD-ENROLL-7K9X4LM2" not in done.stdout + done.stderr  # a secret


def test_enroll_makes_the_identity_on_first_use(tmp_path: Path) -> None:
    done = agent(tmp_path, "enroll", "-c", str(example(tmp_path)))
    assert done.returncode == 0, done.stderr
    identity = load_or_create(tmp_path / "id.key")
    assert done.stdout.splitlines()[:2] == [
        f"public_key: {identity.public_key_b64}",
        "provider_id: <not yet enrolled>",
    ]
    assert "generated a new agent identity" in done.stderr


def test_log_level_from_the_file_unless_the_command_line_names_one(tmp_path: Path) -> None:
    """usepod-agent reads only --log-level; modelport falls back to the file's log_level."""
    quiet = USEPOD_EXAMPLE_TOML.replace('log_level       = "info"', 'log_level = "error"')
    done = agent(tmp_path, "enroll", "-c", str(example(tmp_path, quiet)))
    assert done.returncode == 0, done.stderr
    assert "generated a new agent identity" not in done.stderr
    (tmp_path / "id.key").unlink()
    done = agent(tmp_path, "--log-level", "info", "enroll", "-c", str(example(tmp_path, quiet)))
    assert "generated a new agent identity" in done.stderr


def test_enroll_refuses_a_broken_identity(tmp_path: Path) -> None:
    (tmp_path / "id.key").write_text("nothing\n")
    done = agent(tmp_path, "enroll", "-c", str(example(tmp_path)))
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"error: identity {tmp_path / 'id.key'}: missing header -----BEGIN USEPOD AGENT KEY-----"
    )


def test_status_renders_what_the_status_module_says(tmp_path: Path) -> None:
    done = agent(tmp_path, "status", "-c", str(example(tmp_path)))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "status of wss://api.usepod.ai/provider/connect\n"


async def start_agent(tmp_path: Path, *args: str) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SHIM,
        *args,
        env=env_for(tmp_path / "home"),
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    return process


async def read_line(process: asyncio.subprocess.Process) -> str:
    assert process.stdout is not None
    return (await asyncio.wait_for(process.stdout.readline(), TIMEOUT)).decode().rstrip("\n")


@pytest.mark.parametrize(
    ("command", "signum"),
    [
        (("run",), signal.SIGTERM),
        ((), signal.SIGINT),
        (("run", "--allow-insecure"), signal.SIGTERM),
    ],
)
async def test_run_stops_on_a_signal(
    tmp_path: Path, command: tuple[str, ...], signum: signal.Signals
) -> None:
    """`agent` alone is `run`; SIGTERM and SIGINT set the runner's `stop` event."""
    path = example(tmp_path)
    process = await start_agent(tmp_path, "agent", "-c", str(path), *command)
    try:
        identity_line = await read_line(process)
        identity = load_or_create(tmp_path / "id.key")
        insecure = "--allow-insecure" in command
        assert identity_line == (
            f"running wss://api.usepod.ai/provider/connect {identity.public_key_b64} {insecure}"
        )
        process.send_signal(signum)
        assert await read_line(process) == "stopped"
        assert await read_line(process) == "finally"
        assert await asyncio.wait_for(process.wait(), TIMEOUT) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_a_second_signal_stops_at_once(tmp_path: Path) -> None:
    process = await start_agent(
        tmp_path, "agent", "-c", str(example(tmp_path)), "run", "--stubborn"
    )
    try:
        assert (await read_line(process)).startswith("running ")
        process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.3)
        assert process.returncode is None  # the runner has not stopped: it is draining
        process.send_signal(signal.SIGINT)
        assert await read_line(process) == "finally"  # cancelled, its cleanup ran
        assert await asyncio.wait_for(process.wait(), TIMEOUT) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_run_refuses_a_bad_config(tmp_path: Path) -> None:
    path = example(
        tmp_path, USEPOD_EXAMPLE_TOML.replace("max_concurrent        = 8", "max_concurrent = 0")
    )
    process = await start_agent(tmp_path, "agent", "-c", str(path), "run")
    _, err = await asyncio.wait_for(process.communicate(), TIMEOUT)
    assert process.returncode == 1
    assert (
        err.decode().strip() == f"error: {path}: limits.max_concurrent: must be in [1, 256], got 0"
    )


async def test_setup_pairs_through_the_real_command(tmp_path: Path) -> None:
    config_path = tmp_path / "conf" / "agent.toml"
    async with (
        FakePairing(
            provider_id="prov-cli", model_config=[{"model_id": "gemma", "max_concurrent": 2}]
        ) as pairing,
        FakeEngine("llamacpp", models=["gemma"]) as engine,
    ):
        process = await start_agent(
            tmp_path,
            "agent",
            "setup",
            "--coordinator",
            pairing.url,
            "--config",
            str(config_path),
            "--no-scan",
            "--engine",
            engine.url,
        )
        try:
            lines = []
            while not (line := await read_line(process)).startswith("  2. Code:  "):
                lines.append(line)
            code = line.removeprefix("  2. Code:  ")
            assert f"  llamacpp   at {engine.url} (1 models)" in lines
            pairing.claim(code)
            out, err = await asyncio.wait_for(process.communicate(), TIMEOUT)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert process.returncode == 0, err.decode()
    key_path = tmp_path / "home" / ".usepod-agent" / "identity.key"
    assert out.decode().splitlines()[-1] == (
        f"  modelport agent --config {config_path} --allow-insecure run"
    )
    identity = load_or_create(key_path)
    assert identity.provider_id == "prov-cli"
    assert pairing.issues == [{"agent_pubkey": identity.public_key_b64}]
    config = load_agent_config(config_path, allow_insecure=True)
    assert config.key_path == str(key_path)
    assert [(b.kind, b.url) for b in config.backends] == [("llamacpp", engine.url)]
    assert config.limits.max_concurrent == 2
    # What setup wrote is what `validate` accepts.
    done = agent(tmp_path, "validate", "-c", str(config_path), "--allow-insecure")
    assert done.returncode == 0, done.stderr


async def test_setup_expired_exits_1(tmp_path: Path) -> None:
    async with FakePairing(expire_after=0) as pairing:
        process = await start_agent(
            tmp_path,
            "agent",
            "setup",
            "--coordinator",
            pairing.url,
            "--no-scan",
        )
        _, err = await asyncio.wait_for(process.communicate(), TIMEOUT)
    assert process.returncode == 1
    assert (
        err.decode()
        .strip()
        .endswith("error: the pair code expired; run `modelport agent setup` again")
    )
    # With no --config, setup writes nothing to usepod-agent's own place on expiry.
    assert not (tmp_path / "home" / ".config" / "usepod-agent" / "agent.toml").exists()


async def test_setup_again_keeps_the_key_the_file_names(tmp_path: Path) -> None:
    """Re-running setup pairs the key the existing agent.toml names, and keeps the old file."""
    config_path = example(tmp_path)  # key_path = tmp_path/id.key
    before = config_path.read_text()
    first = load_or_create(tmp_path / "id.key")
    async with FakePairing(activate_after=0, provider_id="prov-again") as pairing:
        process = await start_agent(
            tmp_path,
            "agent",
            "-c",
            str(config_path),
            "setup",
            "--coordinator",
            pairing.url,
            "--no-scan",
        )
        _, err = await asyncio.wait_for(process.communicate(), TIMEOUT)
    assert process.returncode == 0, err.decode()
    assert pairing.issues == [{"agent_pubkey": first.public_key_b64}]
    assert load_or_create(tmp_path / "id.key").provider_id == "prov-again"
    assert load_agent_config(config_path, allow_insecure=True).key_path == str(tmp_path / "id.key")
    assert (tmp_path / "agent.toml.bak").read_text() == before
    assert not (tmp_path / "home" / ".usepod-agent").exists()
