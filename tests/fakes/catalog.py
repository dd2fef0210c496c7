"""Per-engine info routes: health, version, model lists, props, show; and unknown-route answers.

Model capabilities are read from the model's name, the same way for every engine:
"embed" -> an embeddings model; "vision", "-vl", "llava" -> vision; "qwen3", "r1", "think",
"gpt-oss" -> thinking; every chat model has tools.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .core import iso_now, now

if TYPE_CHECKING:
    from .engine import FakeEngine


def caps(name: str) -> set[str]:
    n = name.lower()
    if "embed" in n:
        return {"embeddings"}
    out = {"completion", "tools"}
    if any(k in n for k in ("vision", "-vl", "llava")):
        out.add("vision")
    if any(k in n for k in ("qwen3", "r1", "think", "gpt-oss")):
        out.add("thinking")
    return out


def arch(name: str) -> str:
    base = name.split("/")[-1].split(":")[0].lower()
    found = re.match(r"[a-z]+\d*", base)
    return found.group(0) if found else "llama"


def max_output(fake: FakeEngine) -> int:
    return max(1, fake.context_window // 4)


# -- /v1/models per engine ------------------------------------------------------------------


def openai_models(fake: FakeEngine, request: web.Request) -> dict[str, Any]:
    kind, created = fake.kind, now()
    if kind == "llamacpp":
        return llamacpp_models(fake)
    if kind.startswith("vllm"):
        base = next(
            (m for m in fake.models if "lora" not in m.lower()),
            fake.models[0] if fake.models else "",
        )
        data = []
        for m in fake.models:
            lora = "lora" in m.lower() and m != base
            data.append(
                {
                    "id": m,
                    "object": "model",
                    "created": created,
                    "owned_by": "vllm",
                    "root": f"/adapters/{m}" if lora else m,
                    "parent": base if lora else None,
                    "max_model_len": None if lora else fake.context_window,
                    "permission": [
                        {
                            "id": f"modelperm-{i}",
                            "object": "model_permission",
                            "created": created,
                            "allow_create_engine": False,
                            "allow_sampling": True,
                            "allow_logprobs": True,
                            "allow_search_indices": False,
                            "allow_view": True,
                            "allow_fine_tuning": False,
                            "organization": "*",
                            "group": None,
                            "is_blocking": False,
                        }
                        for i in range(1)
                    ],
                }
            )
        return {"object": "list", "data": data}
    if kind == "lmstudio":
        return {
            "data": [
                {"id": m, "object": "model", "owned_by": "organization_owner"} for m in fake.models
            ],
            "object": "list",
        }
    if kind == "ollama":
        return {
            "object": "list",
            "data": [
                {"id": m, "object": "model", "created": created, "owned_by": "library"}
                for m in fake.models
            ],
        }
    if kind == "openrouter":
        return {"data": [openrouter_model(fake, m) for m in fake.models]}
    if kind == "venice":
        wanted = request.query.get("type", "text")
        entries = [venice_model(fake, m) for m in fake.models]
        if wanted != "all":
            entries = [e for e in entries if e["type"] == wanted]
        return {"object": "list", "type": wanted, "data": entries}
    if kind == "localai":
        return {"object": "list", "data": [{"id": m, "object": "model"} for m in fake.models]}
    return {
        "object": "list",
        "data": [
            {"id": m, "object": "model", "created": created, "owned_by": "system"}
            for m in fake.models
        ],
    }


def llamacpp_models(fake: FakeEngine) -> dict[str, Any]:
    """Shaped like docs/captures/llamacpp_models.json: Ollama-style `models` beside `data`."""
    name = fake.models[0] if fake.models else "model.gguf"
    modalities = ["text", "image"] if "vision" in caps(name) else ["text"]
    return {
        "models": [
            {
                "name": name,
                "model": name,
                "modified_at": "",
                "size": "",
                "digest": "",
                "type": "model",
                "description": "",
                "tags": [""],
                "capabilities": ["completion"],
                "parameters": "",
                "details": {
                    "parent_model": "",
                    "format": "gguf",
                    "family": "",
                    "families": [""],
                    "parameter_size": "",
                    "quantization_level": "",
                },
            }
        ],
        "object": "list",
        "data": [
            {
                "id": name,
                "aliases": [name],
                "tags": [],
                "object": "model",
                "architecture": {"input_modalities": modalities, "output_modalities": ["text"]},
                "created": now(),
                "owned_by": "llamacpp",
                "meta": {
                    "vocab_type": 1,
                    "n_vocab": 262144,
                    "n_ctx": fake.context_window,
                    "n_ctx_train": fake.train_context,
                    "n_embd": 640,
                    "n_params": 268098176,
                    "size": 246587904,
                    "ftype": "Q4_K - Medium",
                },
            }
        ],
    }


def llamacpp_props(fake: FakeEngine) -> dict[str, Any]:
    """Shaped like docs/captures/llamacpp_props.json (trimmed)."""
    name = fake.models[0] if fake.models else "model.gguf"
    return {
        "default_generation_settings": {
            "params": {
                "seed": 4294967295,
                "temperature": 0.8,
                "top_k": 40,
                "top_p": 0.95,
                "min_p": 0.05,
                "max_tokens": -1,
                "n_predict": -1,
                "stream": False,
                "chat_format": "Content-only",
                "reasoning_format": "none",
                "samplers": ["top_k", "top_p", "min_p", "temperature"],
            },
            "n_ctx": fake.context_window,
        },
        "total_slots": 4,
        "model_alias": name,
        "model_ftype": "Q4_K - Medium",
        "model_path": name,
        "modalities": {"vision": "vision" in caps(name), "video": False, "audio": False},
        "endpoint_slots": True,
        "endpoint_props": False,
        "endpoint_metrics": False,
        "ui": True,
        "chat_template": "{%- for message in messages -%}{{- message.content -}}{%- endfor -%}",
        "chat_template_caps": {
            "supports_tools": True,
            "supports_tool_calls": True,
            "supports_system_role": True,
        },
        "bos_token": "<bos>",
        "eos_token": "<eos>",
        "build_info": "b0-unknown",
        "is_sleeping": False,
    }


def openrouter_model(fake: FakeEngine, m: str) -> dict[str, Any]:
    c = caps(m)
    params = ["max_tokens", "temperature", "top_p", "stop", "response_format", "structured_outputs"]
    if "tools" in c:
        params += ["tools", "tool_choice"]
    if "thinking" in c:
        params += ["reasoning", "include_reasoning"]
    inputs = ["text", "image"] if "vision" in c else ["text"]
    return {
        "id": m,
        "canonical_slug": m,
        "name": m,
        "created": now(),
        "description": f"Fake {m}",
        "context_length": fake.context_window,
        "architecture": {
            "modality": "+".join(inputs) + "->text",
            "input_modalities": inputs,
            "output_modalities": ["text"],
            "tokenizer": "Other",
            "instruct_type": None,
        },
        "pricing": {
            "prompt": "0.00000015",
            "completion": "0.0000006",
            "request": "0",
            "image": "0",
        },
        "top_provider": {
            "context_length": fake.context_window,
            "max_completion_tokens": max_output(fake),
            "is_moderated": False,
        },
        "per_request_limits": None,
        "supported_parameters": params,
    }


def venice_model(fake: FakeEngine, m: str) -> dict[str, Any]:
    c = caps(m)
    return {
        "id": m,
        "type": "embedding" if "embeddings" in c else "text",
        "object": "model",
        "created": now(),
        "owned_by": "venice.ai",
        "context_length": fake.context_window,
        "model_spec": {
            "name": m,
            "availableContextTokens": fake.context_window,
            "maxCompletionTokens": max_output(fake),
            "offline": False,
            "capabilities": {
                "supportsFunctionCalling": "tools" in c,
                "supportsVision": "vision" in c,
                "supportsReasoning": "thinking" in c,
                "supportsResponseSchema": True,
                "supportsWebSearch": True,
                "optimizedForCode": False,
                "quantization": "fp8",
            },
            "constraints": {"temperature": {"default": 0.7}, "top_p": {"default": 0.9}},
            "traits": [],
            "modelSource": f"https://huggingface.co/fake/{m}",
        },
    }


def anthropic_models(fake: FakeEngine) -> dict[str, Any]:
    data = [
        {
            "type": "model",
            "id": m,
            "display_name": m.replace("-", " ").title(),
            "created_at": "2025-09-29T00:00:00Z",
            "max_input_tokens": fake.context_window,
            "max_tokens": max_output(fake),
        }
        for m in fake.models
    ]
    return {
        "data": data,
        "has_more": False,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


# -- Ollama native info ---------------------------------------------------------------------


def _ollama_details(m: str) -> dict[str, Any]:
    a = arch(m)
    return {
        "parent_model": "",
        "format": "gguf",
        "family": a,
        "families": [a],
        "parameter_size": "3.2B",
        "quantization_level": "Q4_K_M",
    }


def _digest(m: str) -> str:
    return hashlib.sha256(m.encode()).hexdigest()


def ollama_tags(fake: FakeEngine) -> dict[str, Any]:
    return {
        "models": [
            {
                "name": m,
                "model": m,
                "modified_at": iso_now(),
                "size": 2019393189,
                "digest": _digest(m),
                "details": _ollama_details(m),
            }
            for m in fake.models
        ]
    }


def ollama_ps(fake: FakeEngine) -> dict[str, Any]:
    return {
        "models": [
            {
                "name": m,
                "model": m,
                "size": 3825819519,
                "digest": _digest(m),
                "details": _ollama_details(m),
                "expires_at": "2099-01-01T00:00:00Z",
                "size_vram": 3825819519,
                "context_length": fake.context_window,
            }
            for m in fake.loaded_models
        ]
    }


def ollama_show(fake: FakeEngine, m: str) -> dict[str, Any]:
    a = arch(m)
    c = caps(m)
    capabilities = (
        ["embedding"] if "embeddings" in c else ["completion", *sorted(c - {"completion"})]
    )
    return {
        "license": "",
        "modelfile": f"FROM {m}\n",
        "parameters": "",
        "template": "{{ .Prompt }}",
        "details": _ollama_details(m),
        "model_info": {
            "general.architecture": a,
            "general.parameter_count": 3212749888,
            f"{a}.context_length": fake.train_context,
            f"{a}.embedding_length": 3072,
        },
        "capabilities": capabilities,
        "modified_at": iso_now(),
    }


# -- LM Studio REST ---------------------------------------------------------------------------


def lmstudio_v0(fake: FakeEngine) -> dict[str, Any]:
    data = []
    for m in fake.models:
        c = caps(m)
        kind = "embeddings" if "embeddings" in c else "vlm" if "vision" in c else "llm"
        entry: dict[str, Any] = {
            "id": m,
            "object": "model",
            "type": kind,
            "publisher": "lmstudio-community",
            "arch": arch(m),
            "compatibility_type": "gguf",
            "quantization": "Q4_K_M",
            "state": "not-loaded" if m in fake.not_loaded else "loaded",
            "max_context_length": fake.train_context,
        }
        if m not in fake.not_loaded:
            entry["loaded_context_length"] = fake.context_window
        if "tools" in c:
            entry["capabilities"] = ["tool_use"]
        data.append(entry)
    return {"object": "list", "data": data}


def lmstudio_v1(fake: FakeEngine) -> dict[str, Any]:
    models = []
    for m in fake.models:
        c = caps(m)
        loaded = (
            []
            if m in fake.not_loaded
            else [{"id": m, "config": {"context_length": fake.context_window}}]
        )
        models.append(
            {
                "type": "embedding" if "embeddings" in c else "llm",
                "publisher": "lmstudio-community",
                "key": m,
                "display_name": m,
                "architecture": arch(m),
                "quantization": {"name": "Q4_K_M", "bits_per_weight": 4},
                "size_bytes": 2497280256,
                "params_string": "4B",
                "loaded_instances": loaded,
                "max_context_length": fake.train_context,
                "format": "gguf",
                "capabilities": {"vision": "vision" in c, "trained_for_tool_use": "tools" in c},
                "description": None,
            }
        )
    return {"models": models}


# -- route installation ---------------------------------------------------------------------------


def install(fake: FakeEngine) -> None:
    kind = fake.kind

    def static(obj: Any, status: int = 200) -> Any:
        async def handler(request: web.Request, body: Any) -> web.StreamResponse:
            value = obj(request) if callable(obj) else obj
            if isinstance(value, web.StreamResponse):
                return value
            return fake.json(value, status=status)

        return handler

    def text(body: str, content_type: str = "text/plain") -> Any:
        async def handler(request: web.Request, _: Any) -> web.StreamResponse:
            return web.Response(text=body, content_type=content_type)

        return handler

    if kind == "llamacpp":
        for path in ("/health", "/v1/health"):
            fake.route("GET", path, static({"status": "ok"}), group="health", public=True)
        for path in ("/v1/models", "/models"):
            fake.route("GET", path, static(lambda r: llamacpp_models(fake)), public=True)
        fake.route(
            "GET", "/api/tags", static(lambda r: llamacpp_models(fake))
        )  # the fingerprint trap
        fake.route("GET", "/props", static(lambda r: llamacpp_props(fake)))
        fake.route(
            "GET", "/", text("<!doctype html><title>llama.cpp</title>", "text/html"), public=True
        )
    elif kind in ("vllm", "vllm-old"):

        async def health(request: web.Request, _: Any) -> web.StreamResponse:
            return web.Response(status=503 if fake.loading else 200)

        fake.route("GET", "/health", health, group="health", public=True)
        version = "0.11.0" if kind == "vllm" else "0.6.3"
        fake.route("GET", "/version", static({"version": version}), public=True)
    elif kind == "lmstudio":
        fake.route("GET", "/api/v0/models", static(lambda r: lmstudio_v0(fake)))
        fake.route("GET", "/api/v1/models", static(lambda r: lmstudio_v1(fake)))
    elif kind == "localai":
        for path in ("/readyz", "/healthz"):
            fake.route("GET", path, text("OK"), group="health", public=True)
    elif kind == "ollama":
        fake.route("GET", "/", text("Ollama is running"), group="health", public=True)
        fake.route("GET", "/api/version", static(lambda r: {"version": fake.version}), public=True)
        fake.route("GET", "/api/tags", static(lambda r: ollama_tags(fake)))
        fake.route("GET", "/api/ps", static(lambda r: ollama_ps(fake)))

        async def show(request: web.Request, body: Any) -> web.StreamResponse:
            name = (body.get("model") or body.get("name")) if isinstance(body, dict) else None
            if not isinstance(name, str) or fake._canonical(name) not in fake.models:
                return fake.error("ollama", 404, "model", model=str(name))
            return fake.json(ollama_show(fake, fake._canonical(name)))

        fake.route("POST", "/api/show", show, wire="ollama")
    elif kind == "openrouter":
        fake.route("GET", "/api/v1/models", fake._openai_models, public=True)
        fake.route(
            "GET",
            "/api/v1/key",
            static(
                {
                    "data": {
                        "label": "sk-or-v1-fak...e00",
                        "limit": None,
                        "usage": 0.0,
                        "is_free_tier": False,
                        "limit_remaining": None,
                        "rate_limit": {"requests": -1, "interval": "10s"},
                    }
                }
            ),
        )
    elif kind == "venice":
        fake.route("GET", "/api/v1/models", fake._openai_models, public=True)
    elif kind == "anthropic":
        fake.route("GET", "/v1/models", static(lambda r: anthropic_models(fake)), wire="anthropic")


# What llama-server started without --embeddings answers on /v1/embeddings (measured on
# b11434, the bundled build: status 501).
LLAMACPP_NO_EMBEDDINGS = {
    "error": {
        "code": 501,
        "message": "This server does not support embeddings. Start it with `--embeddings`",
        "type": "not_supported_error",
    }
}


def llamacpp_without_embeddings(fake: FakeEngine) -> None:
    """Make a llama-server fake answer /v1/embeddings as one started without --embeddings."""

    async def refuse(request: web.Request, body: Any) -> web.StreamResponse:
        return fake.json(LLAMACPP_NO_EMBEDDINGS, status=501)

    for path in ("/v1/embeddings", "/embeddings"):
        fake.route("POST", path, refuse, group="embed", wire="openai")


def unknown_route(fake: FakeEngine, request: web.Request) -> web.StreamResponse:
    kind, method, path = fake.kind, request.method, request.path
    if kind == "llamacpp":
        return fake.json(
            {"error": {"code": 404, "message": "File Not Found", "type": "not_found_error"}},
            status=404,
        )
    if kind in ("vllm", "vllm-old"):
        return fake.json({"detail": "Not Found"}, status=404)
    if kind == "lmstudio":  # answers 200 to anything: never fingerprint on it
        if method == "GET" and path == "/":
            return web.Response(
                text="<!doctype html><title>LM Studio</title>", content_type="text/html"
            )
        return fake.json({"error": f"Unexpected endpoint or method. ({method} {path})"})
    if kind == "localai":
        return web.Response(status=404, text=f"Cannot {method} {path}")
    if kind == "ollama":
        return web.Response(status=404, text="404 page not found")
    if kind == "openrouter":
        return web.Response(
            status=404,
            text="<!DOCTYPE html><title>404: This page could not be found.</title>",
            content_type="text/html",
        )
    if kind == "venice":
        return fake.json({"error": "Not Found"}, status=404)
    if kind == "anthropic":
        return fake.error("anthropic", 404, "route", "Not Found")
    return fake.json(
        {
            "error": {
                "message": f"Invalid URL ({method} {path})",
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
        },
        status=404,
    )
