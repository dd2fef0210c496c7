"""`install()`: every cheap check first, then the model, then the binary, then the manifest."""

from __future__ import annotations

import errno
from pathlib import Path

from modelport.engine.binary import choose_binary
from modelport.engine.build import BUILD_BYTES, build_llama_server, check_build_tools
from modelport.engine.model import fetch_model, model_bytes, model_in_place
from modelport.engine.paths import (
    EnginePaths,
    Manifest,
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
    report = Reporter(progress, log)
    root = cache_dir()
    try:
        return _install(root, llama_server, report)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise EngineInstallError(disk_full_message(root)) from exc
        raise EngineInstallError(f"engine install failed: {exc}") from exc


def _install(root: Path, given: str | None, report: Reporter) -> tuple[EnginePaths, bool]:
    root.mkdir(parents=True, exist_ok=True)
    remove_stale_temp(root)
    old = read_manifest(root)
    chosen = choose_binary(root, given, old, report)
    model_sha = model_in_place(root, report)
    if chosen is None:
        check_build_tools()
    need = (BUILD_BYTES if chosen is None else 0) + (0 if model_sha else model_bytes())
    check_free_space(root, need)
    if model_sha is None:  # first: it takes seconds, and the build's smoke test needs it
        model_sha = fetch_model(root, report)
    if chosen is None:
        chosen = build_llama_server(root, report)
    binary, source, version = chosen
    manifest = _manifest_for(root, binary, source, version, model_sha)
    did_work = manifest != old
    if did_work:
        write_manifest(root, manifest)
    else:
        report.say("engine already installed: nothing to do")
    paths = EnginePaths(binary, Path(manifest.model), model_sha, source, version)
    return paths, did_work


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
