"""Legacy completions (/v1/completions) as the candidate loop's operation: passthrough only.

Only engines that serve the endpoint themselves are candidates (their backend relays
`RelayFormat.COMPLETIONS`, from the profile's `completions` column); none is a 400 naming
the model and its engines. A body setting a field an engine drops (its profile's `drops`,
such as `suffix` on llama-server) is passed over for the next candidate; when every one
was, the 400 names the model, the field and why.
"""

from __future__ import annotations

from modelport.errors import InvalidRequest, Unsupported
from modelport.router import Route, Router
from modelport.service.attempt import Attempt
from modelport.service.candidates import Answer, Lease, resolve
from modelport.service.passthrough import relay_answer
from modelport.types import RelayFormat
from modelport.wire.completions import check_request

FORMAT = RelayFormat.COMPLETIONS


class CompletionsCall:
    """One legacy completions request, checked (the constructor raises if it is malformed)."""

    passes_over_unsupported = True  # an engine that drops a field the body sets

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.request = check_request(body)

    @property
    def model(self) -> str:
        return self.request.model

    @property
    def stream(self) -> bool:
        return self.request.stream

    def routes(self, router: Router) -> list[Route]:
        routes = resolve(router, self.model)
        serving = [r for r in routes if FORMAT in r.upstream.backend.formats]
        if not serving:
            kinds = ", ".join(sorted({r.upstream.backend.kind for r in routes}))
            raise InvalidRequest(
                f"model {self.model!r} cannot serve legacy completions (/v1/completions): "
                f"no engine serving it has that endpoint ({kinds}); use /v1/chat/completions",
                param="model",
            )
        return serving

    async def call(self, route: Route, attempt: Attempt, lease: Lease) -> Answer:
        attempt.passthrough = True
        try:
            return await relay_answer(
                route, attempt, lease, FORMAT, self.body, model=self.model, stream=self.stream
            )
        except Unsupported as exc:
            raise Unsupported(
                f"model {self.model!r}: {exc.message}", backend_id=exc.backend_id
            ) from exc
