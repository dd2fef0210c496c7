"""The HTTP server under the app: aiohttp's, with a quiet answer to malformed requests.

aiohttp answers a request it cannot parse (bare-LF line endings, a bad request line, an
oversized header, Content-Length with Transfer-Encoding) in `RequestHandler.handle_error`:
it logs a multi-line traceback whose message quotes the raw bytes it choked on, the
client's Authorization header included, and echoes that same message in the 400's body.
Anyone who can connect could fill the log that way, and a key sent through a proxy that
mangles line endings would land in it. So the gateway's protocol overrides `handle_error`
for parse failures: one log line naming the peer and the kind of mistake, a fixed body,
nothing of what was sent. Other failures keep aiohttp's handling (the app's own middleware
already turns every handler exception into an answer in the client's dialect).

The gateway's listening site (`gateway/connections.py`, `CappedSite`) builds one protocol
per connection itself: `GuardedHandler`, which is this handler with the client timeouts.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from aiohttp import http_exceptions, web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

log = logging.getLogger("modelport.gateway")

# What each parse failure means, in words that quote nothing the client sent.
_KINDS: tuple[tuple[type[http_exceptions.HttpProcessingError], str], ...] = (
    (http_exceptions.BadHttpMethod, "bad method"),
    (http_exceptions.BadStatusLine, "bad request line"),
    (http_exceptions.LineTooLong, "line or header too long"),
    (http_exceptions.InvalidHeader, "bad header"),
    (http_exceptions.InvalidURLError, "bad URL"),
    (http_exceptions.TransferEncodingError, "bad transfer encoding"),
    (http_exceptions.ContentLengthError, "bad content length"),
    (http_exceptions.BadHttpMessage, "malformed message"),
)


def malformed_kind(exc: BaseException) -> str:
    """A fixed phrase for a parse failure; never its message, which quotes the raw bytes."""
    for cls, kind in _KINDS:
        if isinstance(exc, cls):
            return kind
    return "malformed request"


class GatewayRequestHandler(RequestHandler):
    """aiohttp's connection protocol, answering unparsable requests without an echo."""

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if not isinstance(exc, http_exceptions.HttpProcessingError):
            return super().handle_error(request, status, exc, message)
        kind = malformed_kind(exc)
        # A non-HTTP first line (TLS to a plain port, a scanner) is noise: debug, like aiohttp.
        first = self._request_count == 1 and isinstance(exc, http_exceptions.BadHttpMethod)
        log.log(
            logging.DEBUG if first else logging.WARNING,
            "malformed HTTP request from %s: %s (%d)",
            request.remote,
            kind,
            status,
        )
        if request.writer.output_size > 0:
            raise ConnectionError("an answer was already under way; closing the connection")
        text = f"{status} {HTTPStatus(status).phrase}: malformed HTTP request ({kind})\n"
        response = web.Response(status=status, text=text, content_type="text/plain")
        response.force_close()
        return response
