"""Service: bytes of a request in, a Reply out. The data path shared by the gateway, the
agent and the hub; it knows nothing of HTTP.

Every endpoint runs the same way: decode the body into its operation, try the candidates
(candidates.first_answer), then reply. The request ends, and is recorded, in `_end` only:
at once for a whole answer or an error, when its body is closed for a stream.
"""

from __future__ import annotations

from collections.abc import Callable

from modelport.errors import BackendError
from modelport.records import RequestRecord, new_request_id
from modelport.router import Price, Router
from modelport.service.attempt import Attempt, Deadline
from modelport.service.candidates import Answer, Lease, Operation, first_answer
from modelport.service.chat import ChatCall
from modelport.service.completions import CompletionsCall
from modelport.service.count_tokens import CountTokensCall
from modelport.service.embeddings import OPENAI_EMBEDDINGS, EmbedDialect, EmbeddingsCall
from modelport.service.pipeline import StreamBody
from modelport.service.reply import Reply, error_reply, error_status
from modelport.types import RelayContext, WireFormat

Observer = Callable[[RequestRecord], None]
Pricer = Callable[[str], Price]


class Service:
    """The gateway's brain without HTTP: bytes of a request in, a Reply out."""

    def __init__(
        self,
        router: Router,
        *,
        observe: Observer | None = None,
        price: Pricer | None = None,
        request_timeout_s: float = 600.0,
        first_byte_timeout_s: float = 120.0,
    ) -> None:
        """`price`: what a record says its model cost, in place of what the serving backend
        advertises (the agent prices its jobs by its own `[pricing]`);
        `request_timeout_s`: one request's deadline, streaming included;
        `first_byte_timeout_s`: how long one candidate may take to its first byte before the
        next is tried (an upstream may set its own)."""
        self.router = router
        self.observe: Observer = observe or (lambda record: None)
        self.price = price
        self.request_timeout_s = request_timeout_s
        self.first_byte_timeout_s = first_byte_timeout_s

    async def chat(
        self,
        format: WireFormat,
        body: bytes,
        *,
        request_id: str | None = None,
        key_id: str = "",
        context: RelayContext | None = None,
    ) -> Reply:
        """`context` is what the client's request said besides its body (query string, its
        dialect's headers); a passthrough carries it to the engine."""
        attempt = _attempt(format, "chat", request_id, key_id)
        return await self._serve(attempt, lambda: ChatCall(format, body, context))

    async def completions(
        self, body: bytes, *, request_id: str | None = None, key_id: str = ""
    ) -> Reply:
        """OpenAI's legacy completions, relayed to an engine that serves them (errors in
        OpenAI's shape)."""
        attempt = _attempt(WireFormat.OPENAI, "completions", request_id, key_id)
        return await self._serve(attempt, lambda: CompletionsCall(body))

    async def embeddings(
        self,
        body: bytes,
        *,
        dialect: EmbedDialect = OPENAI_EMBEDDINGS,
        request_id: str | None = None,
        key_id: str = "",
    ) -> Reply:
        """`dialect`: the client's embeddings shape (OpenAI's, or Ollama's two)."""
        attempt = _attempt(dialect.format, "embeddings", request_id, key_id)
        return await self._serve(attempt, lambda: EmbeddingsCall(body, dialect))

    async def count_tokens(
        self, body: bytes, *, request_id: str | None = None, key_id: str = ""
    ) -> Reply:
        attempt = _attempt(WireFormat.ANTHROPIC, "count_tokens", request_id, key_id)
        return await self._serve(attempt, lambda: CountTokensCall(body))

    async def _serve(self, attempt: Attempt, decode: Callable[[], Operation]) -> Reply:
        """Decode, try the candidates, reply: the one path of every request."""
        try:
            op = decode()
            attempt.model, attempt.stream = op.model, op.stream
            deadline = Deadline.after(
                self.request_timeout_s, first_byte_s=self.first_byte_timeout_s
            )
            answer, lease = await first_answer(op, op.routes(self.router), attempt, deadline)
        except BackendError as exc:
            attempt.failed(exc, error_status(attempt.format, exc))
            await self._end(attempt, None)
            return error_reply(attempt.format, exc, _headers(attempt))
        return await self._reply(attempt, answer, lease, deadline)

    async def _reply(
        self, attempt: Attempt, answer: Answer, lease: Lease, deadline: Deadline
    ) -> Reply:
        headers = _headers(attempt)
        if answer.stream is None:
            await self._end(attempt, lease)
            return Reply(answer.status, headers, answer.body, content_type=answer.content_type)
        body = StreamBody(answer.stream, attempt, deadline, lambda: self._end(attempt, lease))
        return Reply(answer.status, headers, chunks=body, content_type=answer.content_type)

    async def _end(self, attempt: Attempt, lease: Lease | None) -> None:
        """A request's end, answered or not: upstream closed, slot freed, then its record."""
        try:
            if lease is not None:
                await lease.end()
        finally:
            if self.price is not None:  # set here, so the record is built once, priced
                attempt.price = self.price(attempt.model)
            self.observe(attempt.record())


def _attempt(format: WireFormat, endpoint: str, request_id: str | None, key_id: str) -> Attempt:
    return Attempt(format, endpoint, request_id or new_request_id(), key_id)


def _headers(attempt: Attempt) -> dict[str, str]:
    headers = {"x-request-id": attempt.request_id}
    if attempt.backend:
        headers["x-modelport-backend"] = attempt.backend
    return headers
