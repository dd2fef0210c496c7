"""Embeddings as the candidate loop's operation, in every dialect that has them.

One operation, three client shapes (`EmbedDialect`): OpenAI's /v1/embeddings, Ollama's
/api/embed and its older /api/embeddings. Each decodes its body into the canonical
`EmbedRequest` and says how to write the `EmbedResult` back; every engine is then asked
the same way (`Backend.embed`), so any engine that embeds serves every dialect.

A candidate that cannot take the request (no embeddings, or token ids where its engine
embeds text only: the profile's `embed_token_ids` column, Ollama's /api/embed) answers
Unsupported before any I/O and is passed over; when every one is, the 400 names the model
and why.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from modelport.errors import Unsupported
from modelport.router import Route, Router
from modelport.service.attempt import Attempt
from modelport.service.candidates import Answer, Lease, able, resolve
from modelport.types import EmbedRequest, EmbedResult, WireFormat
from modelport.wire import openai
from modelport.wire.ollama import embeddings as ollama_embeddings

# (the result, ns since the request was decoded, ns until its engine was asked) -> body
Encode = Callable[[EmbedResult, int, int], bytes]


@dataclass(frozen=True)
class EmbedDialect:
    """A client's embeddings shape: its error dialect, and its body decoded into the
    canonical request with the encoder of its answer."""

    format: WireFormat
    decode: Callable[[bytes], tuple[EmbedRequest, Encode]]


def _openai(body: bytes) -> tuple[EmbedRequest, Encode]:
    request = openai.decode_embed_request(body)
    encoding_format = _encoding_format(body)

    def encode(result: EmbedResult, total_ns: int, load_ns: int) -> bytes:
        return openai.encode_embed_response(result, encoding_format=encoding_format)

    return request, encode


def _ollama_embed(body: bytes) -> tuple[EmbedRequest, Encode]:
    call = ollama_embeddings.decode_embed_call(body)

    def encode(result: EmbedResult, total_ns: int, load_ns: int) -> bytes:
        return ollama_embeddings.encode_embed_answer(
            result,
            model=call.request.model,
            dimensions=call.dimensions,
            total_ns=total_ns,
            load_ns=load_ns,
        )

    return call.request, encode


def _ollama_embeddings(body: bytes) -> tuple[EmbedRequest, Encode]:
    request = ollama_embeddings.decode_embeddings_call(body)

    def encode(result: EmbedResult, total_ns: int, load_ns: int) -> bytes:
        return ollama_embeddings.encode_embeddings_answer(result)

    return request, encode


OPENAI_EMBEDDINGS = EmbedDialect(WireFormat.OPENAI, _openai)
OLLAMA_EMBED = EmbedDialect(WireFormat.OLLAMA, _ollama_embed)
OLLAMA_EMBEDDINGS = EmbedDialect(WireFormat.OLLAMA, _ollama_embeddings)


class EmbeddingsCall:
    """One embeddings request, decoded (the constructor raises if it is malformed)."""

    passes_over_unsupported = True
    stream = False

    def __init__(self, body: bytes, dialect: EmbedDialect = OPENAI_EMBEDDINGS) -> None:
        self.started_ns = time.perf_counter_ns()
        self.request, self.encode = dialect.decode(body)

    @property
    def model(self) -> str:
        return self.request.model

    def routes(self, router: Router) -> list[Route]:
        """The candidates that serve embeddings, or may (nothing says they do not)."""
        model = self.request.model
        refusal = f"model {model!r} does not serve embeddings"
        return able(resolve(router, model), "embeddings", refusal, param="model")

    async def call(self, route: Route, attempt: Attempt, lease: Lease) -> Answer:
        asked_ns = time.perf_counter_ns()
        if self.request.inputs or self.request.tokens:
            request = msgspec.structs.replace(self.request, model=route.model)
            try:
                result = await route.upstream.backend.embed(request)
            except Unsupported as exc:
                raise _refusal(self.request.model, exc) from None
            attempt.usage = result.usage
        else:  # Ollama takes "" and [] as nothing to embed: nothing to ask an engine
            result = EmbedResult(vectors=(), model=route.model)
        result = msgspec.structs.replace(result, model=self.request.model)
        done_ns = time.perf_counter_ns()
        body = self.encode(result, done_ns - self.started_ns, asked_ns - self.started_ns)
        return Answer(200, body)


def _encoding_format(body: bytes) -> str:
    payload = msgspec.json.decode(body)
    value = payload.get("encoding_format") if isinstance(payload, dict) else None
    return value if value in ("float", "base64") else "float"


def _refusal(model: str, exc: Unsupported) -> Unsupported:
    """An engine's refusal, naming the model: of a field (`param`: token ids where it embeds
    text only), or of embeddings altogether (llama-server started without --embeddings)."""
    if exc.param:
        message = f"model {model!r}: {exc.message}"
    else:
        message = f"model {model!r} does not serve embeddings (the engine said: {exc.message})"
    return Unsupported(message, param=exc.param, backend_id=exc.backend_id, raw=exc.raw)
