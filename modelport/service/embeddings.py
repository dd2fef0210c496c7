"""Embeddings (/v1/embeddings, OpenAI's dialect only) as the candidate loop's operation.

A candidate that cannot take the request (no embeddings, or token ids where its engine
embeds text only: the profile's `embed_token_ids` column, Ollama's /api/embed) answers
Unsupported before any I/O and is passed over; when every one is, the 400 names the model
and why.
"""

from __future__ import annotations

import msgspec

from modelport.errors import Unsupported
from modelport.router import Route, Router
from modelport.service.attempt import Attempt
from modelport.service.candidates import Answer, Lease, resolve
from modelport.wire import openai


class EmbeddingsCall:
    """One embeddings request, decoded (the constructor raises if it is malformed)."""

    passes_over_unsupported = True
    stream = False

    def __init__(self, body: bytes) -> None:
        self.request = openai.decode_embed_request(body)
        self.encoding_format = _encoding_format(body)

    @property
    def model(self) -> str:
        return self.request.model

    def routes(self, router: Router) -> list[Route]:
        return resolve(router, self.request.model)

    async def call(self, route: Route, attempt: Attempt, lease: Lease) -> Answer:
        request = msgspec.structs.replace(self.request, model=route.model)
        try:
            result = await route.upstream.backend.embed(request)
        except Unsupported as exc:
            raise Unsupported(
                f"model {self.request.model!r}: {exc.message}", backend_id=exc.backend_id
            ) from exc
        attempt.usage = result.usage
        result = msgspec.structs.replace(result, model=self.request.model)
        body = openai.encode_embed_response(result, encoding_format=self.encoding_format)
        return Answer(200, body)


def _encoding_format(body: bytes) -> str:
    payload = msgspec.json.decode(body)
    value = payload.get("encoding_format") if isinstance(payload, dict) else None
    return value if value in ("float", "base64") else "float"
