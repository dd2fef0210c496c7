"""One error hierarchy for every engine.

Each class has an HTTP status (what the gateway answers) and a retryable flag (whether
the router may try another backend). How an error looks on the wire is the codecs' job
(`modelport.wire.openai.encode_error`, `modelport.wire.anthropic.encode_error`).
"""

from __future__ import annotations

from typing import Any

RAW_LIMIT = 4096  # upstream bodies are kept for diagnosis, cut to this many characters


class BackendError(Exception):
    """Root of every failure talking to an engine."""

    status: int = 502
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        backend_id: str | None = None,
        status: int | None = None,
        retryable: bool | None = None,
        raw: str | bytes | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.backend_id = backend_id
        if status is not None:
            self.status = status
        if retryable is not None:
            self.retryable = retryable
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8", "replace")
        self.raw = raw[:RAW_LIMIT] if raw else None

    def __str__(self) -> str:
        where = f"{self.backend_id}: " if self.backend_id else ""
        return f"{where}{self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, backend_id={self.backend_id!r})"


class Unreachable(BackendError):
    """Connection refused, DNS failure, reset before any answer."""

    status = 502
    retryable = True


class TimedOut(BackendError):
    status = 504
    retryable = True


class DeadlineSpent(TimedOut):
    """The request's own deadline ran out while this attempt waited for an admission slot,
    or after earlier candidates had used part of it: the clock's doing, not the engine's
    (the breaker ignores it). An attempt's own first-byte limit is a plain TimedOut."""


class AuthError(BackendError):
    """A key is missing, rejected, or (402) the account cannot pay."""

    status = 401


class UpstreamAuthError(BackendError):
    """An engine refused the credential the gateway holds for it (its 401, 402 or 403, or
    no key configured). The gateway's client is not at fault, so it is not an AuthError:
    502 naming the backend, which the operator must fix. `upstream_status` is what the
    engine said. Clients of the library see the engine's own AuthError; the gateway's
    candidate loop turns it into this one."""

    status = 502

    def __init__(self, backend_name: str, upstream_status: int, **kw: Any) -> None:
        what = {
            402: "refused the gateway's account for lack of credit",
            403: "refused the gateway's credential access",
        }.get(upstream_status, "rejected the gateway's credential")
        super().__init__(
            f"backend {backend_name!r} {what} (upstream HTTP {upstream_status}); the key"
            " sent to this gateway is not at fault: the gateway's operator must fix the"
            " backend's key",
            **kw,
        )
        self.backend_name = backend_name
        self.upstream_status = upstream_status


class ModelNotFound(BackendError):
    status = 404


class RateLimited(BackendError):
    status = 429
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ContextWindowExceeded(BackendError):
    status = 400


class InvalidRequest(BackendError):
    """The request is malformed; `param` names the offending field when known."""

    status = 400

    def __init__(self, message: str, *, param: str | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.param = param


class Overloaded(BackendError):
    """The engine is loading a model, busy, or said 503/529."""

    status = 503
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class QueueFull(Overloaded):
    """Our own admission said no: too many requests in flight and waiting for one upstream.

    Not the engine's fault (the breaker ignores it). OpenAI's dialects call it a rate limit
    (429 `rate_limit_error`), Anthropic's an overload (529 `overloaded_error`): each codec
    says which."""

    status = 429


class Starting(Overloaded):
    """A local engine is on its way up (being installed, built or loading): not a fault, so
    the breaker ignores it. The message says what is happening; `retry_after` when to ask
    again."""


class ProtocolError(BackendError):
    """The engine answered something we cannot read, or a stream ended without its end."""

    status = 502


class Cancelled(BackendError):
    status = 499


class Unsupported(BackendError):
    """Asked for something the backend cannot do; raised before any I/O. `param` names the
    request field it could not honour, when one did."""

    status = 400

    def __init__(self, message: str, *, param: str | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.param = param


class ImagesRefused(Unsupported):
    """The engine said the model cannot take images (a text-only model, or llama-server
    without its vision projector). Another candidate may see them."""
