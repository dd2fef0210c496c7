"""`install()`: every cheap check first (`plan_install`), then the model, then the binary,
then the manifest (`InstallPlan.run`)."""

from __future__ import annotations

import contextlib
import errno
import threading
from collections.abc import Iterator
from pathlib import Path

from modelport.engine import pins
from modelport.engine.binary import choose_binary
from modelport.engine.build import BUILD_BYTES, build_llama_server, check_build_tools
from modelport.engine.model import fetch_model, model_bytes, model_in_place
from modelport.engine.paths import (
    EnginePaths,
    Manifest,
    built_binary_path,
    cache_dir,
    model_path,
    read_manifest,
    write_manifest,
)
from modelport.engine.process import check_free_space, disk_full_message, remove_stale_temp
from modelport.engine.report import EngineInstallError, Log, Progress, Reporter


def install(
    *,
    llama_server: str | None = None,
    progress: Progress | None = None,
    log: Log | None = None,
) -> tuple[EnginePaths, bool]:
    """Put a working llama-server and the checked model in the cache; (paths, did_work).

    did_work is False when everything was already in place (a second run does nothing).
    Every check that can fail cheaply (given binary, compiler, cmake, free space) runs
    before anything is downloaded or built.
    """
    return plan_install(llama_server=llama_server, progress=progress, log=log).run()


def plan_install(
    *,
    llama_server: str | None = None,
    progress: Progress | None = None,
    log: Log | None = None,
    cancel: threading.Event | None = None,
) -> InstallPlan:
    """The cheap checks of `install()`, alone (a second or so): raises EngineInstallError
    when the install cannot work; else a plan whose `run()` does the slow part (minutes on
    a first run: the model download, the build). `serve` checks before it binds its port
    and runs the rest in the background; setting `cancel` ends that run (killing the
    command under way) with EngineInstallError."""
    report = Reporter(progress, log, cancel)
    root = cache_dir()
    with _install_errors(root):
        root.mkdir(parents=True, exist_ok=True)
        remove_stale_temp(root)
        old = read_manifest(root)
        chosen = choose_binary(root, llama_server, old, report)
        model_sha = model_in_place(root, report)
        if chosen is None:
            check_build_tools()
        need = (BUILD_BYTES if chosen is None else 0) + (0 if model_sha else model_bytes())
        check_free_space(root, need)
    return InstallPlan(root, old, chosen, model_sha, report)


class InstallPlan:
    """What `install()` will do once the cheap checks passed: `paths` says where the binary
    and the model will be (known before they are there), `run()` puts them there."""

    def __init__(
        self,
        root: Path,
        old: Manifest | None,
        chosen: tuple[Path, str, str] | None,
        model_sha: str | None,
        report: Reporter,
    ) -> None:
        self._root = root
        self._old = old
        self._chosen = chosen
        self._model_sha = model_sha
        self._report = report
        binary, source, version = chosen or (built_binary_path(root), "built", "")
        sha = model_sha or pins.PINNED_MODEL.sha256
        self.paths = EnginePaths(binary, model_path(root), sha, source, version)

    @property
    def work_left(self) -> bool:
        """Whether `run()` downloads or builds anything (else it takes about 0.2 s)."""
        return self._chosen is None or self._model_sha is None

    def run(self) -> tuple[EnginePaths, bool]:
        """Download and build what is missing, write the manifest; (paths, did_work)."""
        with _install_errors(self._root):
            return self._run()

    def _run(self) -> tuple[EnginePaths, bool]:
        root, report, chosen, model_sha = self._root, self._report, self._chosen, self._model_sha
        if model_sha is None:  # first: it takes seconds, and the build's smoke test needs it
            model_sha = fetch_model(root, report)
        report.check_cancelled()
        if chosen is None:
            chosen = build_llama_server(root, report)
        report.check_cancelled()
        binary, source, version = chosen
        manifest = _manifest_for(root, binary, source, version, model_sha)
        did_work = manifest != self._old
        if did_work:
            write_manifest(root, manifest)
        else:
            report.say("engine already installed: nothing to do")
        paths = EnginePaths(binary, Path(manifest.model), model_sha, source, version)
        return paths, did_work


@contextlib.contextmanager
def _install_errors(root: Path) -> Iterator[None]:
    """OSError as the one error an install raises, a full disk said plainly."""
    try:
        yield
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise EngineInstallError(disk_full_message(root)) from exc
        raise EngineInstallError(f"engine install failed: {exc}") from exc


def _manifest_for(root: Path, binary: Path, source: str, version: str, sha: str) -> Manifest:
    model = model_path(root)
    st = model.stat()
    return Manifest(
        llama_server=str(binary),
        source=source,
        llama_cpp_version=version,
        model=str(model),
        model_sha256=sha,
        model_size=st.st_size,
        model_mtime_ns=st.st_mtime_ns,
    )
