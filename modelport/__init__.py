"""modelport: one typed, async interface over every LLM inference engine.

Import stays light: the names below resolve on first use, so `import modelport` does not
pull in aiohttp or the backends until something asks for them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    # canonical types
    "ChatRequest": "modelport.types",
    "ChatResponse": "modelport.types",
    "Message": "modelport.types",
    "Text": "modelport.types",
    "Image": "modelport.types",
    "ToolCall": "modelport.types",
    "ToolResult": "modelport.types",
    "Thinking": "modelport.types",
    "Tool": "modelport.types",
    "ToolChoice": "modelport.types",
    "Reasoning": "modelport.types",
    "Usage": "modelport.types",
    "FinishReason": "modelport.types",
    "WireFormat": "modelport.types",
    "RelayFormat": "modelport.types",
    "TextDelta": "modelport.types",
    "ThinkingDelta": "modelport.types",
    "ToolCallStart": "modelport.types",
    "ToolCallDelta": "modelport.types",
    "ToolCallEnd": "modelport.types",
    "Done": "modelport.types",
    "Event": "modelport.types",
    "EmbedRequest": "modelport.types",
    "EmbedResult": "modelport.types",
    "BackendModel": "modelport.types",
    "BackendHealth": "modelport.types",
    "Capabilities": "modelport.types",
    # errors
    "BackendError": "modelport.errors",
    "Unreachable": "modelport.errors",
    "TimedOut": "modelport.errors",
    "AuthError": "modelport.errors",
    "ModelNotFound": "modelport.errors",
    "RateLimited": "modelport.errors",
    "ContextWindowExceeded": "modelport.errors",
    "InvalidRequest": "modelport.errors",
    "Overloaded": "modelport.errors",
    "ProtocolError": "modelport.errors",
    "Cancelled": "modelport.errors",
    "Unsupported": "modelport.errors",
    # backends
    "connect": "modelport.backends",
    "OpenAICompatBackend": "modelport.backends.openai_compat",
    "MockBackend": "modelport.backends.mock",
    "OllamaBackend": "modelport.backends.ollama",
    "AnthropicBackend": "modelport.backends.anthropic",
}

__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:
    from modelport.backends import connect
    from modelport.backends.anthropic import AnthropicBackend
    from modelport.backends.mock import MockBackend
    from modelport.backends.ollama import OllamaBackend
    from modelport.backends.openai_compat import OpenAICompatBackend
    from modelport.errors import (
        AuthError,
        BackendError,
        Cancelled,
        ContextWindowExceeded,
        InvalidRequest,
        ModelNotFound,
        Overloaded,
        ProtocolError,
        RateLimited,
        TimedOut,
        Unreachable,
        Unsupported,
    )
    from modelport.types import (
        BackendHealth,
        BackendModel,
        Capabilities,
        ChatRequest,
        ChatResponse,
        Done,
        EmbedRequest,
        EmbedResult,
        Event,
        FinishReason,
        Image,
        Message,
        Reasoning,
        RelayFormat,
        Text,
        TextDelta,
        Thinking,
        ThinkingDelta,
        Tool,
        ToolCall,
        ToolCallDelta,
        ToolCallEnd,
        ToolCallStart,
        ToolChoice,
        ToolResult,
        Usage,
        WireFormat,
    )


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'modelport' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
