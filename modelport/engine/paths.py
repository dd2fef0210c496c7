"""Where the engine lives in the cache, the manifest that records it, and `installed()`.

`<cache>/engine.json` records what is in place, so `installed()` can answer with a few
`stat` calls and never hashes, builds or downloads anything.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import msgspec
import platformdirs

from modelport.engine import pins

EXE = ".exe" if os.name == "nt" else ""


@dataclass(frozen=True)
class EnginePaths:
    """What the managed backend needs to start llama-server with the bundled model."""

    llama_server: Path
    model: Path
    model_sha256: str
    source: str  # "path" (found on PATH) | "given" | "built"
    llama_cpp_version: str = ""  # first line of `llama-server --version`


class Manifest(msgspec.Struct, frozen=True):
    """engine.json: what install() put in place, so installed() need not hash anything."""

    llama_server: str
    source: str
    llama_cpp_version: str
    model: str
    model_sha256: str
    model_size: int
    model_mtime_ns: int


def cache_dir() -> Path:
    """The cache root: MODELPORT_CACHE_DIR if set, else the platform's user cache dir."""
    override = os.environ.get("MODELPORT_CACHE_DIR")
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_cache_dir("modelport"))


def manifest_path(root: Path) -> Path:
    return root / "engine.json"


def built_binary_path(root: Path) -> Path:
    return root / "bin" / f"llama-server{EXE}"


def model_path(root: Path) -> Path:
    return root / "models" / pins.PINNED_MODEL.filename


def installed() -> EnginePaths | None:
    """What install() put in place, if it is all still there; never builds or downloads.

    Cheap on purpose (the gateway asks at every start): the model is trusted when its size
    and mtime still match the manifest, and the binary when it is still an executable file.
    """
    manifest = read_manifest(cache_dir())
    if manifest is None or manifest.model_sha256 != pins.PINNED_MODEL.sha256:
        return None
    binary, model = Path(manifest.llama_server), Path(manifest.model)
    if not is_executable(binary) or not _model_unchanged(model, manifest):
        return None
    return EnginePaths(
        llama_server=binary,
        model=model,
        model_sha256=manifest.model_sha256,
        source=manifest.source,
        llama_cpp_version=manifest.llama_cpp_version,
    )


def read_manifest(root: Path) -> Manifest | None:
    try:
        return msgspec.json.decode(manifest_path(root).read_bytes(), type=Manifest)
    except (OSError, msgspec.DecodeError):
        return None


def is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _model_unchanged(model: Path, manifest: Manifest) -> bool:
    try:
        st = model.stat()
    except OSError:
        return False
    return st.st_size == manifest.model_size and st.st_mtime_ns == manifest.model_mtime_ns


def write_manifest(root: Path, manifest: Manifest) -> None:
    data = msgspec.json.format(msgspec.json.encode(manifest), indent=2) + b"\n"
    _write_atomically(manifest_path(root), data)


def _write_atomically(dest: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
