"""The smoke test of a fresh build: start it with the model and wait for /health."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from modelport.engine.process import last_lines
from modelport.engine.report import EngineInstallError, Reporter

SMOKE_TIMEOUT = 120.0  # loading the 253 MB model and one warmup decode take about 2 s here


def smoke_test(binary: Path, model: Path, work: Path, report: Reporter) -> None:
    """Start the new binary with the model and wait for /health, which comes after the
    warmup decode: `--version` alone passed on a build that crashed on its first matmul."""
    report.stage("check llama-server", None)
    log_path = work / "smoke.log"
    port = _free_port()
    command = [str(binary), "-m", str(model), "--host", "127.0.0.1", "--port", str(port)]
    command += ["-c", "512", "-np", "1"]
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            command, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        try:
            _wait_healthy(proc, port, log_path)
        finally:
            _stop(proc)


def _wait_healthy(proc: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    deadline = time.monotonic() + SMOKE_TIMEOUT
    while time.monotonic() < deadline:
        returncode = proc.poll()
        if returncode is not None:
            tail = last_lines(log_path.read_text(errors="replace"))
            raise EngineInstallError(
                f"the built llama-server {_describe_exit(returncode)} while loading the "
                f"model, so it was not installed: {tail}"
            )
        if _health_ok(port):
            return
        time.sleep(0.2)
    raise EngineInstallError(
        f"the built llama-server did not answer /health within {SMOKE_TIMEOUT:.0f} s"
    )


def _health_ok(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
            return bool(answer.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"died of {signal.Signals(-returncode).name}"
        except ValueError:
            return f"died of signal {-returncode}"
    return f"exited {returncode}"
