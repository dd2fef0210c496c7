"""What each field of Ollama's API takes, as data for validate.check_values.

Types from ollama/ollama api/types.go (ChatRequest, GenerateRequest, Options, Runner):
Go decodes `options` into typed fields, so a string temperature or a 1e308 (no float32)
is Ollama's own 400. Ollama states no ranges; these are what the engines under it take:
token counts and sizes in a 32-bit int (llama.cpp's), temperatures not below 0,
probabilities 0 to 1, floats within float32.
"""

from __future__ import annotations

from modelport.wire.validate import (
    ARRAY,
    BOOLEAN,
    INT32_MAX,
    MESSAGES,
    OBJECT,
    SEED,
    STRING,
    STRING_OR_ARRAY,
    STRINGS,
    TOOLS,
    Check,
    integer,
    number,
)

FLOAT32_MAX = 3.4028234663852886e38
_INT = integer(-INT32_MAX - 1, INT32_MAX)
_FLOAT = number(-FLOAT32_MAX, FLOAT32_MAX)
_PROBABILITY = number(0, 1)

# /api/chat and /api/generate, top level (`think`, `format` and `keep_alive` have shapes of
# their own: their decoders check them).
VALUES: dict[str, Check] = {
    "model": STRING,
    "messages": MESSAGES,
    "tools": TOOLS,
    "prompt": STRING,
    "suffix": STRING,
    "system": STRING,
    "template": STRING,
    "images": STRINGS,
    "context": ARRAY,
    "raw": BOOLEAN,
    "stream": BOOLEAN,
    "options": OBJECT,
    "truncate": BOOLEAN,
    "shift": BOOLEAN,
    "logprobs": BOOLEAN,
    "top_logprobs": integer(0, 20),
    "width": integer(1, INT32_MAX),
    "height": integer(1, INT32_MAX),
    "steps": integer(1, INT32_MAX),
}

# `options` (api/types.go Options and Runner).
OPTION_VALUES: dict[str, Check] = {
    "num_keep": _INT,
    "seed": SEED,
    "num_predict": integer(-2, INT32_MAX),  # -1: no limit; -2: fill the context
    "top_k": _INT,
    "top_p": _PROBABILITY,
    "min_p": _PROBABILITY,
    "typical_p": _PROBABILITY,
    "tfs_z": _FLOAT,
    "repeat_last_n": _INT,
    "temperature": number(0, FLOAT32_MAX),
    "repeat_penalty": _FLOAT,
    "presence_penalty": _FLOAT,
    "frequency_penalty": _FLOAT,
    "mirostat": _INT,
    "mirostat_tau": _FLOAT,
    "mirostat_eta": _FLOAT,
    "penalize_newline": BOOLEAN,
    "stop": STRING_OR_ARRAY,
    "num_ctx": _INT,
    "num_batch": _INT,
    "num_gpu": _INT,
    "main_gpu": _INT,
    "use_mmap": BOOLEAN,
    "use_mlock": BOOLEAN,
    "num_thread": _INT,
    "numa": BOOLEAN,
    "low_vram": BOOLEAN,
}

# /api/embed and /api/embeddings (api.EmbedRequest, api.EmbeddingRequest).
EMBED_VALUES: dict[str, Check] = {
    "model": STRING,
    "prompt": STRING,
    "dimensions": integer(0, INT32_MAX),
    "truncate": BOOLEAN,
    "options": OBJECT,
}
