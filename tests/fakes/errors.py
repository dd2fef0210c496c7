"""Error bodies in each engine's own shape, and each engine's own wording.

A *style* names one shape (see `body`); an error *kind* says what went wrong:
context, auth, credits, permission, model, route, rate, loading, overloaded, too_large,
invalid, server. `kind_for(status)` picks the kind a bare `Reply.status` stands for.
"""

from __future__ import annotations

from typing import Any

from .core import rand_alnum

_KIND_BY_STATUS = {
    400: "context",
    401: "auth",
    402: "credits",
    403: "permission",
    404: "model",
    413: "too_large",
    429: "rate",
    503: "loading",
    529: "overloaded",
}


def kind_for(status: int) -> str:
    return _KIND_BY_STATUS.get(status, "server" if status >= 500 else "invalid")


# -- type names per style -----------------------------------------------------------------

_LLAMACPP_TYPES = {
    "context": "exceed_context_size_error",
    "auth": "authentication_error",
    "model": "not_found_error",
    "route": "not_found_error",
    "loading": "unavailable_error",
    "overloaded": "unavailable_error",
    "rate": "unavailable_error",
    "permission": "permission_error",
    "server": "server_error",
}
_VLLM_TYPES = {
    "model": "NotFoundError",
    "route": "NotFoundError",
    "auth": "UnauthorizedError",
    "permission": "ForbiddenError",
    "rate": "TooManyRequestsError",
    "loading": "ServiceUnavailableError",
    "overloaded": "ServiceUnavailableError",
    "server": "InternalServerError",
}
_OPENAI_TYPES = {
    "rate": "requests",
    "credits": "insufficient_quota",
    "loading": "server_error",
    "overloaded": "server_error",
    "server": "server_error",
}
_OPENAI_CODES = {
    "context": "context_length_exceeded",
    "auth": "invalid_api_key",
    "model": "model_not_found",
    "rate": "rate_limit_exceeded",
    "credits": "insufficient_quota",
}
_ANTHROPIC_TYPES = {
    "auth": "authentication_error",
    "credits": "billing_error",
    "permission": "permission_error",
    "model": "not_found_error",
    "route": "not_found_error",
    "too_large": "request_too_large",
    "rate": "rate_limit_error",
    "loading": "overloaded_error",
    "overloaded": "overloaded_error",
    "server": "api_error",
}


def _ollama_openai_type(status: int) -> str:
    # ollama/openai: NewError maps 400 and 404, everything else is api_error
    return {400: "invalid_request_error", 404: "not_found_error"}.get(status, "api_error")


def request_id() -> str:
    return "req_" + rand_alnum(24)


def body(
    style: str, status: int, kind: str, message: str, *, n_prompt: int = 0, n_ctx: int = 0
) -> Any:
    """The JSON body an engine answers an error with (a dict, or a str for text bodies)."""
    if style == "llamacpp":
        err: dict[str, Any] = {
            "code": status,
            "message": message,
            "type": _LLAMACPP_TYPES.get(kind, "invalid_request_error"),
        }
        if kind == "context":
            err["n_prompt_tokens"] = n_prompt
            err["n_ctx"] = n_ctx
        return {"error": err}
    if style in ("vllm", "vllm-old"):
        if kind == "auth":
            return {"error": "Unauthorized"}  # vLLM's auth middleware, both generations
        vtype = _VLLM_TYPES.get(kind, "BadRequestError")
        if style == "vllm-old":
            return {
                "object": "error",
                "message": message,
                "type": vtype,
                "param": None,
                "code": status,
            }
        return {"error": {"message": message, "type": vtype, "param": None, "code": status}}
    if style in ("openai", "lmstudio"):
        param = "messages" if kind == "context" else None
        if style == "lmstudio" and kind == "model":
            param = "model"
        return {
            "error": {
                "message": message,
                "type": _OPENAI_TYPES.get(kind, "invalid_request_error"),
                "param": param,
                "code": _OPENAI_CODES.get(kind),
            }
        }
    if style == "localai":
        return {"error": {"code": status, "message": message, "type": ""}}
    if style in ("ollama", "venice"):
        return {"error": message}
    if style == "ollama-openai":
        return {
            "error": {
                "message": message,
                "type": _ollama_openai_type(status),
                "param": None,
                "code": None,
            }
        }
    if style == "openrouter":
        metadata: dict[str, Any] = {}
        if status in (502, 503):
            metadata = {"provider_name": "FakeProvider", "raw": message}
        return {"error": {"code": status, "message": message, "metadata": metadata}}
    if style in ("anthropic", "ollama-anthropic", "lmstudio-anthropic"):
        out: dict[str, Any] = {
            "type": "error",
            "error": {
                "type": _ANTHROPIC_TYPES.get(kind, "invalid_request_error"),
                "message": message,
            },
        }
        if style == "anthropic":
            out["request_id"] = request_id()
        return out
    if style == "vllm-anthropic":
        vtype = _VLLM_TYPES.get(kind, "BadRequestError")
        return {"type": "error", "error": {"type": vtype, "message": message}}
    raise ValueError(f"unknown error style {style!r}")


def wording(
    style: str,
    kind: str,
    *,
    model: str = "",
    n_prompt: int = 0,
    n_ctx: int = 0,
    n_completion: int = 0,
) -> str | None:
    """The engine's own words for errors whose wording carries meaning; None for the rest.

    `n_prompt` counts every token asked for; `n_completion` is the max_tokens part of it.
    """
    family = style.split("-")[0]
    if kind == "context":
        return {
            "llamacpp": f"request ({n_prompt} tokens) exceeds the available context size "
            f"({n_ctx} tokens), try increasing it",
            "vllm": f"This model's maximum context length is {n_ctx} tokens. However, you "
            f"requested {n_prompt} tokens ({n_prompt - n_completion} in the messages, "
            f"{n_completion} in the completion). Please reduce the length of the messages or "
            "completion.",
            "openai": f"This model's maximum context length is {n_ctx} tokens. However, your "
            f"messages resulted in {n_prompt} tokens. Please reduce the length of the messages.",
            "lmstudio": f"Trying to keep the first {n_prompt} tokens when context the overflows. "
            f"However, the model is loaded with context length of only {n_ctx} tokens, which is "
            "not enough. Try to load the model with a larger context length, or provide a "
            "shorter input",
            "openrouter": f"This endpoint's maximum context length is {n_ctx} tokens. However, you "
            f"requested about {n_prompt} tokens ({n_prompt} of text input). Please reduce the "
            'length of either one, or use the "middle-out" transform to compress your prompt '
            "automatically.",
            "venice": f"The prompt ({n_prompt} tokens) exceeds the model context length of "
            f"{n_ctx} tokens",
            "anthropic": f"prompt is too long: {n_prompt} tokens > {n_ctx} maximum",
            "localai": f"the request exceeds the context size: {n_prompt} tokens > {n_ctx}",
            "ollama": f"input length ({n_prompt} tokens) exceeds the context length ({n_ctx})",
        }.get(family)
    if kind == "model":
        return {
            "llamacpp": f"model '{model}' not found",
            "vllm": f"The model `{model}` does not exist.",
            "openai": f"The model `{model}` does not exist or you do not have access to it.",
            "lmstudio": f'Invalid model identifier "{model}". Please specify a valid downloaded '
            "model (i.e. the model key).",
            "localai": f"model {model} not found",
            "ollama": f"model '{model}' not found",
            "openrouter": f"No endpoints found for {model}.",
            "venice": "Specified model not found",
            "anthropic": f"model: {model}",
        }.get(family)
    if kind == "auth":
        return {
            "llamacpp": "Invalid API Key",
            "vllm": "Unauthorized",
            "openai": "Incorrect API key provided. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            "lmstudio": "Invalid or missing API token",
            "localai": "An authentication key is required",
            "ollama": "unauthorized",
            "openrouter": "No cookie auth credentials found",
            "venice": "Authentication failed",
            "anthropic": "invalid x-api-key",
        }.get(family)
    if kind == "credits":
        return {
            "openrouter": "Insufficient credits. Add more using https://openrouter.ai/settings/credits",
            "venice": "Insufficient USD or Diem balance to complete request",
            "anthropic": "Your credit balance is too low to access the Anthropic API.",
            "openai": "You exceeded your current quota, please check your plan and billing "
            "details.",
        }.get(family)
    if kind == "loading":
        if family == "anthropic":
            return "Overloaded"
        if family == "openrouter":
            return "No instances available for this model right now"
        return "Loading model"
    if kind == "overloaded":
        return "Overloaded"
    return None
