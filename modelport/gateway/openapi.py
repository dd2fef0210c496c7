"""The gateway's OpenAPI document: every route it serves, with request and answer schemas.

Built once at import from the codecs' own data (wire/schemas.py): request bodies from the
field tables and the types their decoders read, answers from the Structs the codecs decode
engines' answers with, errors in each dialect's shape. docs/openapi.md says which source
each route has and why.
"""

from __future__ import annotations

from typing import Any

from modelport import __version__
from modelport.types import WireFormat
from modelport.wire import codec_for
from modelport.wire.anthropic.stream_decode import WireFrame
from modelport.wire.anthropic.stream_decode import WireMessage as AnthropicMessage
from modelport.wire.completions.stream_decode import Completion
from modelport.wire.fields import FieldTable
from modelport.wire.ollama.embeddings import OllamaEmbed
from modelport.wire.ollama.stream_decode import WireLine
from modelport.wire.openai.embeddings import EmbedResponse
from modelport.wire.openai.fields import EMBED_FIELDS
from modelport.wire.openai.structs import Chunk, WireResponse
from modelport.wire.schema_types import (
    BOOLEAN,
    INTEGER,
    NAME,
    NUMBER,
    OBJECT,
    STOP,
    STRING,
    TOKEN_IDS,
    JSONSchema,
    array,
    enum,
    obj,
)
from modelport.wire.schemas import (
    ANTHROPIC_ERROR,
    OLLAMA_ERROR,
    OPENAI_ERROR,
    request_schema,
    struct_schemas,
)

SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}]
SSE = "text/event-stream"
NDJSON = "application/x-ndjson"
ERROR_STATUSES = ("400", "401", "403", "404", "405", "413", "429", "500", "502", "503", "504")

_ANSWERS, COMPONENTS = struct_schemas(
    [
        WireResponse,
        Completion,
        AnthropicMessage,
        EmbedResponse,
        WireLine,
        OllamaEmbed,
        Chunk,
        WireFrame,
    ]
)
(
    CHAT_ANSWER,
    COMPLETION_ANSWER,
    MESSAGE_ANSWER,
    EMBED_ANSWER,
    OLLAMA_LINE,
    OLLAMA_EMBED,
    CHAT_CHUNK,
    ANTHROPIC_FRAME,
) = _ANSWERS


def sse_event(data: JSONSchema, done: bool = False) -> JSONSchema:
    """One event of a stream, as OpenAPI 3.1 describes `text/event-stream` (a schema per
    event): `data` holds JSON of the `data` schema (and `[DONE]` where the dialect ends
    with it); an error mid-stream is the same event shape with an `error` member."""
    payload: JSONSchema = {
        "type": "string",
        "contentMediaType": "application/json",
        "contentSchema": data,
    }
    if done:
        payload = {"anyOf": [{"const": "[DONE]"}, payload]}
    return obj(("data",), data=payload, event=STRING)


# The Responses stream's events are built by wire/responses/stream_encode.py (dicts): each
# has its `type`.
RESPONSES_EVENT = obj(("type",), type=STRING)

# The Responses answer is built by wire/responses/envelope.py (a dict, no Struct): its
# members every answer has.
RESPONSES_ANSWER = obj(
    ("id", "object", "output"),
    id=STRING,
    object=enum("response"),
    status=STRING,
    model=STRING,
    output=array(OBJECT),
    usage={"anyOf": [OBJECT, {"type": "null"}]},
)


def _error(dialect: WireFormat) -> dict[str, Any]:
    schema = {WireFormat.ANTHROPIC: ANTHROPIC_ERROR, WireFormat.OLLAMA: OLLAMA_ERROR}
    body = schema.get(dialect, OPENAI_ERROR)
    return {
        "description": f"An error in the {dialect.value} dialect's shape",
        "content": {"application/json": {"schema": body}},
    }


def _errors(dialect: WireFormat) -> dict[str, Any]:
    return {status: _error(dialect) for status in ERROR_STATUSES}


def _post(
    summary: str,
    body: JSONSchema,
    answer: JSONSchema,
    dialect: WireFormat,
    stream: JSONSchema | None = None,
    stream_type: str = SSE,
) -> dict[str, Any]:
    """A POST route; `stream` is one event's (SSE) or line's (NDJSON) schema when the
    route streams."""
    content: dict[str, Any] = {"application/json": {"schema": answer}}
    if stream is not None:
        content[stream_type] = {"schema": stream}
    return {
        "post": {
            "summary": summary,
            "security": SECURITY,
            "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
            "responses": {
                "200": {
                    "description": "The answer, or its stream when `stream` is on",
                    "content": content,
                },
                **_errors(dialect),
            },
        }
    }


def _get(
    summary: str,
    answer: JSONSchema | None,
    dialect: WireFormat = WireFormat.OPENAI,
    public: bool = False,
    media: str = "application/json",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": "OK"}
    if answer is not None:
        ok["content"] = {media: {"schema": answer}}
    operation: dict[str, Any] = {"summary": summary, "responses": {"200": ok, **(extra or {})}}
    if not public:
        operation["security"] = SECURITY
        operation["responses"] |= {s: _error(dialect) for s in ("401", "403", "404", "405")}
    return {"get": operation}


def table(format: WireFormat) -> FieldTable:
    """The dialect's field table (every client dialect has one; the Codec protocol does
    not promise the attribute, ClientCodecBase has it)."""
    found = getattr(codec_for(format), "fields", None)
    if not isinstance(found, FieldTable):
        raise TypeError(f"{format} has no field table to publish")
    return found


def _chat_requests() -> dict[str, JSONSchema]:
    return {
        "openai": request_schema(table(WireFormat.OPENAI), ["model", "messages"]),
        "anthropic": request_schema(
            table(WireFormat.ANTHROPIC), ["model", "messages", "max_tokens"]
        ),
        # count_tokens: a messages body without max_tokens (wire/anthropic/count_tokens.py)
        "count": request_schema(table(WireFormat.ANTHROPIC), ["model", "messages"]),
        "responses": request_schema(table(WireFormat.RESPONSES), ["model", "input"]),
        # One table serves both Ollama endpoints (a field of the other one meets its row).
        "ollama_chat": request_schema(table(WireFormat.OLLAMA), ["model", "messages"]),
        "ollama_generate": request_schema(table(WireFormat.OLLAMA_GENERATE), ["model"]),
        "embeddings": request_schema(EMBED_FIELDS, ["model", "input"]),
    }


_PROMPT = {"anyOf": [STRING, array(STRING, 1), TOKEN_IDS, array(TOKEN_IDS, 1)]}
# wire/completions/request.py: relayed only (no field table: every field goes as it came).
COMPLETIONS_REQUEST = obj(
    ("model", "prompt"),
    model=NAME,
    prompt=_PROMPT,
    suffix=STRING,
    stream=BOOLEAN,
    max_tokens=INTEGER,
    temperature=NUMBER,
    top_p=NUMBER,
    stop=STOP,
)
# wire/ollama/embeddings.py and models.py (decode_show_request)
OLLAMA_EMBED_REQUEST = obj(
    ("model",),
    model=NAME,
    input={"anyOf": [STRING, array(STRING)]},
    dimensions=INTEGER,
    truncate=BOOLEAN,
    options=OBJECT,
    keep_alive={"anyOf": [STRING, NUMBER]},
)
OLLAMA_EMBEDDINGS_REQUEST = obj(
    ("model",),
    model=NAME,
    prompt=STRING,
    options=OBJECT,
    keep_alive={"anyOf": [STRING, NUMBER]},
)
OLLAMA_SHOW_REQUEST = obj(model=STRING, name=STRING, verbose=BOOLEAN)
for _schema in (COMPLETIONS_REQUEST, OLLAMA_EMBED_REQUEST, OLLAMA_EMBEDDINGS_REQUEST):
    _schema["additionalProperties"] = True

# Listings: wire/openai/models.py, wire/anthropic/models.py (with `anthropic-version`),
# wire/ollama/models.py. Both /v1/models shapes are a `data` array of objects with an `id`.
MODEL = obj(("id",), id=STRING)
MODEL_LIST = obj(("data",), data=array(MODEL))
OLLAMA_MODELS = obj(("models",), models=array(obj(("name", "model"), name=STRING, model=STRING)))
HEALTH = obj(("status",), status=enum("ok"))
READY = obj(("status",), status=enum("ready", "not ready"), backends=array(OBJECT))


def build() -> dict[str, Any]:
    req = _chat_requests()
    o, a, r, ol = WireFormat.OPENAI, WireFormat.ANTHROPIC, WireFormat.RESPONSES, WireFormat.OLLAMA
    paths: dict[str, Any] = {
        "/v1/chat/completions": _post(
            "OpenAI chat completions",
            req["openai"],
            CHAT_ANSWER,
            o,
            sse_event(CHAT_CHUNK, done=True),
        ),
        "/v1/completions": _post(
            "OpenAI legacy completions (suffix for fill-in-the-middle), relayed to engines "
            "that serve them",
            COMPLETIONS_REQUEST,
            COMPLETION_ANSWER,
            o,
            sse_event(COMPLETION_ANSWER, done=True),
        ),
        "/v1/responses": _post(
            "OpenAI Responses (stateless: previous_response_id is refused)",
            req["responses"],
            RESPONSES_ANSWER,
            r,
            sse_event(RESPONSES_EVENT),
        ),
        "/v1/messages": _post(
            "Anthropic messages", req["anthropic"], MESSAGE_ANSWER, a, sse_event(ANTHROPIC_FRAME)
        ),
        "/v1/messages/count_tokens": _post(
            "Anthropic token count, where a backend can count",
            req["count"],
            obj(("input_tokens",), input_tokens=INTEGER),
            a,
        ),
        "/v1/embeddings": _post("OpenAI embeddings", req["embeddings"], EMBED_ANSWER, o),
        "/api/chat": _post(
            "Ollama chat (streams NDJSON unless stream is false)",
            req["ollama_chat"],
            OLLAMA_LINE,
            ol,
            OLLAMA_LINE,
            NDJSON,
        ),
        "/api/generate": _post(
            "Ollama generate (streams NDJSON unless stream is false)",
            req["ollama_generate"],
            OLLAMA_LINE,
            ol,
            OLLAMA_LINE,
            NDJSON,
        ),
        "/api/show": _post(
            "Ollama: one model's details, context length, capabilities",
            OLLAMA_SHOW_REQUEST,
            obj(("model_info", "capabilities"), model_info=OBJECT, capabilities=array(STRING)),
            ol,
        ),
        "/api/embed": _post(
            "Ollama embeddings (normalised vectors)", OLLAMA_EMBED_REQUEST, OLLAMA_EMBED, ol
        ),
        "/api/embeddings": _post(
            "Ollama's older embeddings (one prompt)",
            OLLAMA_EMBEDDINGS_REQUEST,
            obj(("embedding",), embedding=array(NUMBER)),
            ol,
        ),
        "/v1/models": _get(
            "Every model served (OpenAI's list; Anthropic's pages when `anthropic-version`"
            " is sent: limit, after_id, before_id)",
            MODEL_LIST,
        ),
        "/v1/models/{model_id}": _get(
            "One model or alias, in the caller's shape; 404 unknown", MODEL
        ),
        "/": _get(
            "Ollama's liveness answer: `Ollama is running` (text/plain; HEAD too)",
            STRING,
            ol,
            public=True,
            media="text/plain",
        ),
        "/api/version": _get(
            "Ollama's version answer (the Ollama release this API follows)",
            obj(("version",), version=STRING),
            ol,
        ),
        "/api/tags": _get("Ollama: every model and alias served", OLLAMA_MODELS, ol),
        "/api/ps": _get("Ollama: the models engines hold in memory now", OLLAMA_MODELS, ol),
        "/health": _get("Alive", HEALTH, public=True),
        "/ready": _get(
            "Ready: at least one backend is ready (503 otherwise)",
            READY,
            public=True,
            extra={
                "503": {
                    "description": "Not ready",
                    "content": {"application/json": {"schema": READY}},
                }
            },
        ),
        "/metrics": _get("Prometheus metrics", STRING, media="text/plain"),
        "/openapi.json": _get("This document", OBJECT),
    }
    paths["/v1/models/{model_id}"]["parameters"] = [
        {"name": "model_id", "in": "path", "required": True, "schema": STRING}
    ]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "modelport gateway",
            "version": __version__,
            "description": "OpenAI-, Anthropic- and Ollama-compatible API over every "
            "configured engine.",
        },
        "components": {
            "schemas": COMPONENTS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
            },
        },
        "paths": paths,
    }


OPENAPI: dict[str, Any] = build()
