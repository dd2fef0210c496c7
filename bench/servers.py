"""The benchmark's servers: the fake upstream, `modelport serve`, LiteLLM's proxy.

Each runs in its own process group (so its CPU time can be read and it can be stopped whole)
and is stopped on the way out. modelport is started through the `modelport` console script
its pyproject.toml declares, from the working tree or from a `git archive` export of a commit:
the benchmark depends on `modelport serve`'s command line and HTTP API, not on modules.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fake_upstream import ANTH_MODEL, HOST, IDLE_MODEL, IDLE_TRANS_MODEL, PASS_MODEL, TRANS_MODEL

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
UVLOOP_POLICY = "import asyncio, uvloop; asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Processes:
    """Children, each in its own process group, all stopped on the way out."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: list[Proc] = []

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Proc:
        log = self.workdir / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
                env=env,
                start_new_session=True,
            )
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            _signal_group(proc.popen, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in reversed(self.procs):
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            _signal_group(proc.popen, signal.SIGKILL)  # stragglers in the group too
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=5)
        self.procs.clear()


def _signal_group(popen: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(popen.pid, sig)  # start_new_session: the group id is the child's pid


def start_fake(procs: Processes) -> tuple[Proc, str]:
    """The fake upstream (bench/fake_upstream.py); returns it and its base URL."""
    proc = procs.start("fake", [sys.executable, str(BENCH / "fake_upstream.py")])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        lines = proc.log.read_text().strip().splitlines()
        if lines and lines[0].isdigit():
            return proc, f"http://{HOST}:{int(lines[0])}"
        if proc.popen.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"the fake upstream did not start:\n{proc.tail()}")


def quiet_server(port: int) -> list[str]:
    """A modelport config's `[server]` and `[discovery]` as every benchmark runs it: on
    HOST:port, no client keys, no ledger, no discovery, warnings only."""
    return [
        "[server]",
        f'host = "{HOST}"',
        f"port = {port}",
        "api_keys_env = []",
        'ledger = "off"',
        'log_level = "warning"',
        "",
        "[discovery]",
        "enabled = false",
        "",
    ]


def modelport_config(fake: str, port: int, extra_pass_models: tuple[str, ...] = ()) -> str:
    """`extra_pass_models`: more models of the fake on the `vllm` (passthrough) backend."""

    def backend(kind: str, name: str, models: list[str]) -> str:
        listed = ", ".join(f'"{m}"' for m in models)
        return (
            f'[[backends]]\nkind = "{kind}"\nname = "{name}"\nurl = "{fake}"\n'
            f"models = [{listed}]\nmax_concurrent = 4096\nmax_queue = 4096\n"
        )

    return "\n".join(
        [
            *quiet_server(port),
            backend("vllm", "pass", [PASS_MODEL, IDLE_MODEL, *extra_pass_models]),
            backend("localai", "trans", [TRANS_MODEL, IDLE_TRANS_MODEL]),
            backend("anthropic", "anth", [ANTH_MODEL]),
        ]
    )


def litellm_config(fake: str) -> str:
    # TRANS_MODEL is the Responses client's: `openai/chat_completions/` makes LiteLLM's
    # /v1/responses bridge to the upstream's chat completions (as modelport's localai
    # backend does) instead of calling the upstream's /v1/responses, which the fake lacks.
    entries = []
    for model, provider in ((PASS_MODEL, "openai/"), (TRANS_MODEL, "openai/chat_completions/")):
        entries.append(
            f"  - model_name: {model}\n"
            "    litellm_params:\n"
            f"      model: {provider}{model}\n"
            f"      api_base: {fake}/v1\n"
            "      api_key: sk-bench\n"
        )
    return "model_list:\n" + "".join(entries)


@contextlib.contextmanager
def terminated_on_sigterm() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so the finally blocks stop every child."""

    def raise_exit(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, raise_exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def wait_ready(url: str, proc: Proc, seconds: float, *, expect: Callable[[bytes], bool]) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited ({proc.popen.returncode}):\n{proc.tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200 and expect(response.read()):
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{proc.name} not ready at {url} after {seconds:g}s:\n{proc.tail()}")


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 16384 if hard == resource.RLIM_INFINITY else min(hard, 16384)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def short_commit(rev: str) -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short", rev], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def export_commit(rev: str, into: Path) -> Path:
    """`git archive` of the modelport package and pyproject.toml at `rev` into `into`; the
    repository is not touched."""
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "archive", rev, "modelport", "pyproject.toml"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    check_loads_from(into, f"the export of {rev}")
    return into


def check_loads_from(project: Path, what: str) -> None:
    """That modelport, with `project` as PYTHONPATH, loads from `project` and not from a
    package installed in this venv (an editable install of another checkout, say)."""
    found = subprocess.run(
        [sys.executable, "-c", "import modelport; print(modelport.__file__)"],
        env={**os.environ, "PYTHONPATH": str(project)},
        cwd="/",  # not `project`: the servers run elsewhere, with only PYTHONPATH to find it
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not Path(found).is_relative_to(project):
        raise RuntimeError(f"{what} is shadowed: modelport loads from {found}")


def serve_argv(project: Path, *, uvloop: bool = False) -> list[str]:
    """`modelport serve` through the console script that `project`'s pyproject.toml declares,
    so the benchmark depends on the CLI only, wherever the code behind it lives."""
    project_table = tomllib.loads((project / "pyproject.toml").read_text()).get("project", {})
    entry = project_table.get("scripts", {}).get("modelport")
    if not entry:
        raise RuntimeError(f"{project}/pyproject.toml declares no `modelport` console script")
    module, _, func = entry.partition(":")
    code = f"import sys; from {module} import {func}; sys.argv[0] = 'modelport'; sys.exit({func}())"
    if uvloop:  # a what-if: modelport itself runs on asyncio's own loop
        code = f"{UVLOOP_POLICY}; {code}"
    return [sys.executable, "-c", code, "serve"]


def bench_env() -> dict[str, str]:
    """The environment of every server: LiteLLM's switches for a like-for-like setup."""
    env = dict(os.environ)
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # no fetch of the price list at start
    env.setdefault("LITELLM_LOG", "ERROR")
    # No client keys on either gateway (modelport: api_keys_env = []), the like-for-like
    # setting; LiteLLM refuses to start keyless unless told so.
    env["LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY"] = "true"
    # /v1/messages on an openai/ model goes to the upstream's Responses API by default; the
    # fake (like vLLM, LocalAI, ...) has chat completions, which is also what modelport calls.
    env["LITELLM_USE_CHAT_COMPLETIONS_URL_FOR_ANTHROPIC_MESSAGES"] = "True"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start_modelport(
    procs: Processes,
    name: str,
    fake: str,
    env: dict[str, str],
    *,
    rev: str | None = None,
    uvloop: bool = False,
    extra_pass_models: tuple[str, ...] = (),
) -> tuple[Proc, str]:
    """`modelport serve` on the fake, from the working tree or (rev) a git archive export;
    returns it and its base URL (wait_modelport: until all three backends are ready)."""
    port = free_port()
    config = procs.workdir / f"{name}.toml"
    config.write_text(modelport_config(fake, port, extra_pass_models))
    project = ROOT
    if rev is not None:
        project = export_commit(rev, procs.workdir / f"src-{name}")
        env = {**env, "PYTHONPATH": str(project)}
    argv = [*serve_argv(project, uvloop=uvloop), "--config", str(config), "--no-discovery"]
    proc = procs.start(name, argv, env)
    return proc, f"http://{HOST}:{port}"


def wait_modelport(proc: Proc, url: str) -> None:
    def all_ready(body: bytes) -> bool:
        backends = json.loads(body).get("backends", [])
        return len(backends) == 3 and all(b["ready"] for b in backends)

    wait_ready(url + "/ready", proc, 60, expect=all_ready)


def start_litellm(procs: Processes, fake: str, env: dict[str, str]) -> tuple[Proc, str]:
    """LiteLLM's proxy, one worker, on the fake; returns it and its base URL (not yet ready:
    see wait_litellm, it takes a while to import)."""
    port = free_port()
    config = procs.workdir / "litellm.yaml"
    config.write_text(litellm_config(fake))
    litellm = str(Path(sys.executable).parent / "litellm")
    argv = [litellm, "--config", str(config), "--host", HOST, "--port", str(port)]
    proc = procs.start("litellm", [*argv, "--num_workers", "1"], env)
    return proc, f"http://{HOST}:{port}"


def wait_litellm(proc: Proc, url: str) -> None:
    wait_ready(url + "/health/liveliness", proc, 180, expect=lambda body: True)
