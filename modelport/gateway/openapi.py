"""The gateway's OpenAPI document: the routes it serves, with loose bodies.

Request and response bodies follow the OpenAI and Anthropic APIs, which publish their own
full schemas; here they are described by their required members only, which is what the
gateway itself checks before it forwards anything.
"""

from __future__ import annotations

from typing import Any

from modelport import __version__

_ERROR = {"description": "An error in the caller's wire format (OpenAI, Anthropic or Ollama shape)"}
_JSON_OBJECT: dict[str, Any] = {"type": "object", "additionalProperties": True}


def _post(
    summary: str, required: list[str], stream: bool = True, stream_type: str = "text/event-stream"
) -> dict[str, Any]:
    content: dict[str, Any] = {"application/json": {"schema": _JSON_OBJECT}}
    if stream:
        content[stream_type] = {"schema": {"type": "string"}}
    return {
        "post": {
            "summary": summary,
            "security": [{"bearer": []}, {"apiKey": []}],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": required,
                            "additionalProperties": True,
                        }
                    }
                },
            },
            "responses": {
                "200": {
                    "description": "The answer, or its stream when `stream` is true",
                    "content": content,
                },
                "400": _ERROR,
                "401": _ERROR,
                "404": _ERROR,
                "413": _ERROR,
                "429": _ERROR,
                "502": _ERROR,
                "503": _ERROR,
                "504": _ERROR,
            },
        }
    }


def _get(summary: str, public: bool = False) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": _JSON_OBJECT}}}
        },
    }
    if not public:
        operation["security"] = [{"bearer": []}, {"apiKey": []}]
    return {"get": operation}


OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "modelport gateway",
        "version": __version__,
        "description": "OpenAI- and Anthropic-compatible API over every configured engine.",
    },
    "components": {
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
        }
    },
    "paths": {
        "/v1/chat/completions": _post("OpenAI chat completions", ["model", "messages"]),
        "/v1/completions": _post(
            "OpenAI legacy completions (suffix for fill-in-the-middle), relayed to engines "
            "that serve them",
            ["model", "prompt"],
        ),
        "/v1/responses": _post(
            "OpenAI Responses (stateless: previous_response_id is refused)", ["model", "input"]
        ),
        "/v1/messages": _post("Anthropic messages", ["model", "messages", "max_tokens"]),
        "/api/chat": _post(
            "Ollama chat (streams NDJSON unless stream is false)",
            ["model", "messages"],
            stream_type="application/x-ndjson",
        ),
        "/api/generate": _post(
            "Ollama generate (streams NDJSON unless stream is false)",
            ["model", "prompt"],
            stream_type="application/x-ndjson",
        ),
        "/v1/messages/count_tokens": _post(
            "Anthropic token count, where a backend can count", ["model", "messages"], stream=False
        ),
        "/v1/embeddings": _post("OpenAI embeddings", ["model", "input"], stream=False),
        "/v1/models": _get(
            "Every model served (OpenAI's list; Anthropic's pages when `anthropic-version`"
            " is sent: limit, after_id, before_id)"
        ),
        "/v1/models/{model_id}": _get("One model or alias, in the caller's shape; 404 unknown"),
        "/": _get("Ollama's liveness answer: `Ollama is running` (text/plain; HEAD too)", True),
        "/api/version": _get("Ollama's version answer (the Ollama release this API follows)"),
        "/api/tags": _get("Ollama: every model and alias served"),
        "/api/show": _post(
            "Ollama: one model's details, context length, capabilities", ["model"], stream=False
        ),
        "/api/ps": _get("Ollama: the models engines hold in memory now"),
        "/api/embed": _post("Ollama embeddings (normalised vectors)", ["model"], stream=False),
        "/api/embeddings": _post("Ollama's older embeddings (one prompt)", ["model"], stream=False),
        "/health": _get("Alive", public=True),
        "/ready": _get("Ready: at least one backend is ready (503 otherwise)", public=True),
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "security": [{"bearer": []}, {"apiKey": []}],
                "responses": {"200": {"description": "Prometheus text exposition"}},
            }
        },
        "/openapi.json": _get("This document"),
    },
}
