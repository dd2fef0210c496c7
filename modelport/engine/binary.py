"""Which llama-server to use: given, recorded, built before, or on PATH (else: build one)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from modelport.engine.paths import EXE, Manifest, built_binary_path, is_executable
from modelport.engine.pins import build_number
from modelport.engine.process import last_lines
from modelport.engine.report import EngineInstallError, Reporter

VERSION_TIMEOUT = 30.0


def find_llama_server(given: str | None = None) -> Path | None:
    """The binary named by `given` (a path or a command name), else llama-server on PATH.

    A `given` that does not exist or cannot run raises: the user asked for it by name, so
    quietly falling back to another binary would hide the mistake.
    """
    if given is not None:
        return given_binary(given)
    found = shutil.which(f"llama-server{EXE}")
    return Path(found).absolute() if found else None


def given_binary(given: str) -> Path:
    found = shutil.which(given)
    if found is not None:
        return Path(found).absolute()
    path = Path(given).expanduser()
    if not path.exists():
        raise EngineInstallError(f"--llama-server {given}: no such file")
    if path.is_dir():
        raise EngineInstallError(f"--llama-server {given}: is a directory, not the binary")
    raise EngineInstallError(f"--llama-server {given}: is not executable (chmod +x it?)")


def choose_binary(
    root: Path, given: str | None, old: Manifest | None, report: Reporter
) -> tuple[Path, str, str] | None:
    """(path, source, version) of a binary to use as is, or None when one must be built."""
    if given is not None:
        path = given_binary(given)
        report.say(f"using the given llama-server: {path}")
        return path, "given", binary_version(path)
    recorded = _recorded_binary(old)
    if recorded is not None:
        report.say(f"llama-server already in place: {recorded[0]}")
        return recorded
    built = _previously_built(root)
    if built is not None:
        report.say(f"llama-server already built: {built[0]}")
        return built
    on_path = find_llama_server()
    if on_path is not None:
        report.say(f"using llama-server from PATH: {on_path}")
        return on_path, "path", binary_version(on_path)
    return None


def _recorded_binary(old: Manifest | None) -> tuple[Path, str, str] | None:
    """The binary the manifest names, if it still runs (and is still the pinned build)."""
    if old is None:
        return None
    path = Path(old.llama_server)
    version = version_or_none(path)
    if version is None:
        return None
    if old.source == "built" and not _is_pinned_build(version):
        return None
    return path, old.source, version


def _previously_built(root: Path) -> tuple[Path, str, str] | None:
    """A built binary whose manifest was lost: a 7-minute build is worth reusing."""
    path = built_binary_path(root)
    version = version_or_none(path)
    if version is None or not _is_pinned_build(version):
        return None
    return path, "built", version


def _is_pinned_build(version: str) -> bool:
    return f"(build {build_number()}," in version


def binary_version(binary: Path) -> str:
    """First line of `binary --version`; raises unless it exits 0 (a binary that cannot
    even print its version will not serve either)."""
    try:
        done = subprocess.run(
            [str(binary), "--version"],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=VERSION_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EngineInstallError(f"{binary} --version failed: {exc}") from exc
    output = (done.stderr + done.stdout).strip()
    if done.returncode != 0:
        raise EngineInstallError(
            f"{binary} --version exited {done.returncode}: {last_lines(output)}"
        )
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    versioned = [line for line in lines if "version" in line.lower()]
    return (versioned or lines or [""])[0]


def version_or_none(binary: Path) -> str | None:
    if not is_executable(binary):
        return None
    try:
        return binary_version(binary)
    except EngineInstallError:
        return None
