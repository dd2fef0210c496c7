"""Real processes for the end-to-end tests: `modelport serve --hub`, `modelport agent`, the
bundled llama-server, and the files an operator writes for them.

Every process writes its stdout and stderr to a log file in the test's directory (read
while it runs, shown when a test fails) and is ended by the test that started it:
`Proc.stop()` (SIGTERM, then SIGKILL after a grace) or `Proc.kill()` (SIGKILL). Tests
start them in their own environment (`process_env`): the user data and config dirs are
the test's, so no ledger, agents file or agent.toml of the machine is read or written.

The identity file is written here with `cryptography`, as usepod-agent's `src/identity.rs`
(`serialize`) writes it, never by modelport's code: it is the file an operator brings.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

# `python -m modelport.cli` is the `modelport` console script (pyproject's [project.scripts]).
MODELPORT = (sys.executable, "-m", "modelport.cli")
# identity.rs: `created.to_rfc3339()` of a chrono DateTime<Utc> (nanoseconds, +00:00).
CREATED = "2026-11-30T05:00:00.123456789+00:00"


def free_port() -> int:
    """A port free now on 127.0.0.1 (the process given it binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- identity files ------------------------------------------------------------------------


def pubkey_b64(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def identity_text(key: Ed25519PrivateKey, provider_id: str | None = None) -> str:
    """usepod-agent's identity file for `key`, as identity.rs `serialize` renders it."""
    seed = key.private_bytes_raw()
    lines = [
        "-----BEGIN USEPOD AGENT KEY-----",
        "version: 1",
        f"created: {CREATED}",
        f"secret: {base64.b64encode(seed).decode()}",
        f"public: {pubkey_b64(key)}",
    ]
    if provider_id is not None:
        lines.append(f"provider_id: {provider_id}")
    lines.append("-----END USEPOD AGENT KEY-----")
    return "\n".join(lines) + "\n"


def write_identity(path: Path, key: Ed25519PrivateKey | None = None) -> Ed25519PrivateKey:
    """A new identity file (mode 0600, as identity.rs `write_with_mode_0600`); its key."""
    key = key or Ed25519PrivateKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(identity_text(key))
    path.chmod(0o600)
    return key


# -- agent.toml ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Engine:
    """One `[[backends]]` row."""

    kind: str
    url: str


def agent_toml(
    *,
    hub_url: str,
    key_path: Path,
    engines: Sequence[Engine],
    prices: tuple[int, int] = (500_000, 750_000),
    model_prices: dict[str, tuple[int, int]] | None = None,
    max_concurrent: int = 8,
    metrics_port: int | None = None,
    enrollment_code: str | None = None,
    modelport: str | None = 'discover = false\nledger_path = "agent-ledger.sqlite3"',
) -> str:
    """agent.toml in usepod-agent's shape (its agent.example.toml and setup.rs
    `render_paired_config`); `modelport` is the body of modelport's own table (None: no
    table, the file usepod-agent itself would read)."""
    out = ['[operator]\ndisplay_name = "team-test"\n', f'[coordinator]\nurl = "{hub_url}"']
    if enrollment_code is not None:
        out.append(f'enrollment_code = "{enrollment_code}"')
    out.append(f'\n[identity]\nkey_path = "{key_path}"\n')
    for engine in engines:
        out.append(f'[[backends]]\nkind = "{engine.kind}"\nurl = "{engine.url}"\n')
    out.append(
        f"[pricing]\ndefault_input_per_1m = {prices[0]}\ndefault_output_per_1m = {prices[1]}\n"
    )
    for model, (price_in, price_out) in (model_prices or {}).items():
        out.append(
            f'[pricing.models."{model}"]\ninput_per_1m = {price_in}\noutput_per_1m = {price_out}\n'
        )
    out.append(f"[limits]\nmax_concurrent = {max_concurrent}\nmax_tokens_per_minute = 200_000\n")
    port = metrics_port or free_port()
    out.append(f'[observability]\nprometheus_addr = "127.0.0.1:{port}"\nlog_level = "info"\n')
    if modelport is not None:
        out.append(f"[modelport]\n{modelport}\n")
    return "\n".join(out)


# -- processes -----------------------------------------------------------------------------


def process_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a test's process: its own user dirs (ledgers, agents file,
    config), unbuffered output, and no key of the machine's environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELPORT_")}
    env.update(
        XDG_DATA_HOME=str(home / "data"),
        XDG_CONFIG_HOME=str(home / "config"),
        PYTHONUNBUFFERED="1",
        NO_COLOR="1",
        COLUMNS="200",
    )
    env.update(extra)
    return env


class Proc:
    """A child process whose output goes to `log`."""

    def __init__(
        self, name: str, args: Sequence[str], *, log: Path, env: dict[str, str], cwd: Path
    ) -> None:
        self.name = name
        self.args = list(args)
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            # its own process group: a SIGKILL of the test run does not leave it orphaned
            # in ours, and signals go to it alone
            self.popen = subprocess.Popen(
                self.args,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def wait_for(
        self, pattern: str, *, within: float = 30.0, after: int = 0
    ) -> re.Match[str]:
        """The first match of `pattern` in the log past offset `after`; fails when the
        process ends first or nothing matches in time."""
        deadline = time.monotonic() + within
        regex = re.compile(pattern)
        while True:
            found = regex.search(self.output(), after)
            if found:
                return found
            if self.returncode is not None:
                raise AssertionError(
                    f"{self.name} exited ({self.returncode}) before {pattern!r}:\n{self.tail()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: no {pattern!r} in {within}s:\n{self.tail()}")
            await asyncio.sleep(0.05)

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def signal(self, signum: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.popen.pid, signum)

    def kill(self) -> None:
        """SIGKILL: the process dies at once, its sockets dropped without a close."""
        self.signal(signal.SIGKILL)
        self.popen.wait(10)

    async def wait(self, within: float = 15.0) -> int:
        deadline = time.monotonic() + within
        while self.returncode is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} still running after {within}s:\n{self.tail()}")
            await asyncio.sleep(0.05)
        return self.popen.returncode

    def stop(self, grace_s: float = 10.0) -> int:
        """SIGTERM, then SIGKILL after `grace_s`; the exit status."""
        self.signal(signal.SIGTERM)
        try:
            return self.popen.wait(grace_s)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.popen.returncode


def modelport(name: str, *args: str, home: Path, cwd: Path | None = None, **env: str) -> Proc:
    """A long-running `modelport ...` process (serve, agent)."""
    return Proc(
        name,
        [*MODELPORT, *args],
        log=home / "logs" / f"{name}.log",
        env=process_env(home, **env),
        cwd=cwd or home,
    )


async def run_modelport(
    *args: str, home: Path, cwd: Path | None = None, within: float = 60.0, **env: str
) -> tuple[int, str]:
    """Run one `modelport ...` command to its end (off the event loop's thread, so the
    fakes it talks to keep serving); its exit status and output (stdout, then stderr)."""
    proc = await asyncio.create_subprocess_exec(
        *MODELPORT,
        *args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=process_env(home, **env),
        cwd=cwd or home,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), within)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode() + err.decode()


# -- the bundled llama-server --------------------------------------------------------------


def start_llama_server(
    home: Path, *, alias: str, ctx_size: int = 2048, parallel: int = 2
) -> tuple[Proc, str]:
    """The bundled llama-server (`modelport engine install`'s) with the bundled model, as
    the managed backend starts it (backends/managed/process.py `command`). Without the
    engine the test fails and says so, as tests/test_real_engine.py does: a tier that
    cannot run is never skipped in silence."""
    import pytest

    from modelport.engine import installed

    paths = installed()
    if paths is None:
        pytest.fail(
            "the embedded engine is not installed, so the real-engine tier cannot run: "
            "run `modelport engine install` (bash .ci/run does it)"
        )
    port = free_port()
    args = [
        str(paths.llama_server),
        "--model", str(paths.model),
        "--alias", alias,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--ctx-size", str(ctx_size),
        "--parallel", str(parallel),
    ]  # fmt: skip
    proc = Proc(
        "llama-server", args, log=home / "logs" / "llama-server.log", env=dict(os.environ), cwd=home
    )
    return proc, f"http://127.0.0.1:{port}"


async def wait_healthy(proc: Proc, url: str, within: float = 120.0) -> None:
    """Until `url`/health answers 200 (llama-server: after the model loaded)."""
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as http:
        while True:
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with http.get(url + "/health") as answer:
                    if answer.status == 200:
                        return
            if proc.returncode is not None:
                raise AssertionError(f"{proc.name} exited ({proc.returncode}):\n{proc.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{proc.name} not healthy in {within}s:\n{proc.tail()}")
            await asyncio.sleep(0.2)


async def until(check: Callable[[], object], within: float = 10.0, step: float = 0.05) -> float:
    """Poll `check()` (what it reads is another process's state: nothing to await) until
    it is true; the seconds it took. Fails after `within`."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > within:
            raise AssertionError(f"not true within {within}s")
        await asyncio.sleep(step)
    return time.monotonic() - start
