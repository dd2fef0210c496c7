"""count_tokens (/v1/messages/count_tokens, Anthropic's dialect) as the loop's operation.

Not every engine can count: a backend that cannot says Unsupported before any I/O, and
the loop passes over it to the next candidate serving the model.
"""

from __future__ import annotations

import msgspec

from modelport.errors import Unsupported
from modelport.router import Route, Router
from modelport.service.attempt import Attempt
from modelport.service.candidates import Answer, Lease
from modelport.service.chat import chat_routes
from modelport.types import Usage
from modelport.wire import anthropic


class CountTokensCall:
    """One count_tokens request, decoded (the constructor raises if it is malformed)."""

    passes_over_unsupported = True
    stream = False

    def __init__(self, body: bytes) -> None:
        self.request = anthropic.decode_count_tokens_request(body)

    @property
    def model(self) -> str:
        return self.request.model

    def routes(self, router: Router) -> list[Route]:
        return chat_routes(router, self.request)

    async def call(self, route: Route, attempt: Attempt, lease: Lease) -> Answer:
        request = msgspec.structs.replace(self.request, model=route.model)
        try:
            tokens = await route.upstream.backend.count_tokens(request)
        except Unsupported:
            model = self.request.model
            raise Unsupported(f"no backend serving {model!r} can count tokens") from None
        attempt.usage = Usage(input_tokens=tokens)
        return Answer(200, anthropic.encode_count_tokens_response(tokens))
