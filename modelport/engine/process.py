"""Helpers every install step shares: running commands, pip download, hashes, scratch dirs."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

from modelport.engine.report import EngineInstallError, Reporter

TAIL_LINES = 30


def pip_download(
    specs: Sequence[str], dest: Path, options: Sequence[str], report: Reporter, stage: str
) -> None:
    """`python -m pip download --no-deps` into dest; counts saved files as progress."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--disable-pip-version-check",
        "--no-input",
        *options,
        "-d",
        str(dest),
        *specs,
    ]
    saved = [0]

    def on_line(line: str) -> None:
        if stage and line.startswith("Saved "):
            saved[0] += 1
            report.stage(stage, saved[0] / len(specs))

    if stage:
        report.stage(stage, 0.0)
    run(command, "pip download " + " ".join(specs), on_line, report.cancel)


def run(
    command: Sequence[str],
    what: str,
    on_line: Callable[[str], None],
    cancel: threading.Event | None = None,
) -> None:
    """Run a command, feeding each output line to on_line; raise with its tail on failure.

    The command runs in its own process group (POSIX), so an interrupt or `cancel` kills
    the compilers it started too, not only the command itself.
    """
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    try:
        proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            start_new_session=os.name == "posix",
        )
    except OSError as exc:
        raise EngineInstallError(f"{what}: cannot run {command[0]}: {exc}") from exc
    if cancel is not None:
        threading.Thread(target=_kill_on_cancel, args=(proc, cancel), daemon=True).start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            tail.append(line.rstrip())
            on_line(line)
        returncode = proc.wait()
    finally:
        if proc.poll() is None:  # interrupted: do not leave a compiler running
            _kill_group(proc)
            proc.wait()
    if cancel is not None and cancel.is_set():
        raise EngineInstallError(f"{what}: the engine install was cancelled")
    if returncode != 0:
        output = "\n".join(tail)
        if "No space left on device" in output:
            raise OSError(errno.ENOSPC, f"{what}: no space left on device")
        raise EngineInstallError(f"{what} failed (exit {returncode}):\n{output}")


def _kill_on_cancel(proc: subprocess.Popen[str], cancel: threading.Event) -> None:
    """Watcher thread: kill the command's group once `cancel` is set (it may print nothing
    for minutes, so the line loop cannot be the one to notice)."""
    while proc.poll() is None:
        if cancel.wait(0.2):
            _kill_group(proc)
            return


def _kill_group(proc: subprocess.Popen[str]) -> None:
    if os.name == "posix":
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()


def check_sha256(path: Path, expected: str, what: str) -> None:
    actual = sha256_file(path)
    if actual != expected:
        raise EngineInstallError(f"{what}: sha256 {actual}, expected {expected}")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def check_free_space(root: Path, need: int) -> None:
    free = shutil.disk_usage(root).free
    if need and free < need:
        raise EngineInstallError(
            f"not enough disk space in {root}: {free / 1024**3:.1f} GB free, the engine install "
            f"needs about {need / 1024**3:.1f} GB (set MODELPORT_CACHE_DIR to use another disk)"
        )


def disk_full_message(root: Path) -> str:
    return f"disk full while installing the engine into {root}: free some space and run again"


def temp_dir(root: Path, kind: str) -> Path:
    """Scratch space beside the results (so os.replace stays on one file system), named by
    pid so a later run can tell an abandoned one from a running one."""
    parent = root / "tmp"
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{kind}-{os.getpid()}-", dir=parent))


def remove_stale_temp(root: Path) -> None:
    """Delete scratch dirs left by killed installs (a dead build leaves about 1 GB)."""
    parent = root / "tmp"
    if not parent.is_dir():
        return
    for entry in parent.iterdir():
        parts = entry.name.split("-")
        if len(parts) >= 3 and parts[1].isdigit() and not _pid_alive(int(parts[1])):
            shutil.rmtree(entry, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    if os.name == "nt":  # signal 0 is CTRL_C_EVENT there, not a probe: assume alive
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def last_lines(text: str, count: int = 5) -> str:
    return " | ".join(text.splitlines()[-count:]) or "(no output)"
