"""The one place that takes secrets out of text that leaves the process.

Two kinds of secret reach strings we show: the keys a backend sends (an engine may echo
one in an error) and passwords inside URLs. Everything that builds a message for a client,
a log line, a status page or a file goes through these functions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from modelport.errors import BackendError

REDACTED = "[redacted]"
ENGINE = "the engine"  # what a message says instead of an engine's address
MESSAGE_LIMIT = 1000

# What still looks like a key after the keys we hold are gone: sk-..., Bearer ..., long tokens.
_KEY_SHAPED = re.compile(
    r"(?i)\b(?:sk|pk|rk|key|org|proj)-[A-Za-z0-9_\-*]{6,}|\bbearer\s+\S+|\b[A-Za-z0-9_\-]{40,}\b"
)


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every occurrence of each secret removed (secrets under 4 characters are
    too short to find without mangling ordinary words)."""
    for secret in secrets:
        if secret and len(secret) >= 4 and secret in text:
            text = text.replace(secret, REDACTED)
    return text


def public_message(message: str) -> str:
    """An error message fit for a client: key-shaped strings redacted, length capped.

    Upstream messages can echo (part of) a key ("Incorrect API key provided: sk-..."); the
    backends redact the keys they hold, and this catches what still looks like one.
    """
    return _KEY_SHAPED.sub(REDACTED, message)[:MESSAGE_LIMIT]


def redact_url(url: str) -> str:
    """The URL with any password in it replaced: URLs are shown, secrets are not."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{parts.username}:***@{host}").geturl()


def hide_address(text: str, url: str | None) -> str:
    """`text` without the engine at `url`: the URL and its host:port become "the engine".

    A client sees errors, never where the gateway's engines live; the operator's log names
    the backend by its id (`kind:url`) beside the message.
    """
    if not url:
        return text
    try:
        parts = urlsplit(url)
    except ValueError:
        return text
    host = parts.netloc.rpartition("@")[2]
    for address in (url.rstrip("/"), f"{parts.scheme}://{host}", host):
        if address and address in text:
            text = text.replace(address, ENGINE)
    return text


_ENGINE_WORD = re.compile(rf"\b{ENGINE}\b(?!')")


def name_engine(text: str, name: str) -> str:
    """`text` with "the engine" (what transport failures and `hide_address` say) naming the
    backend by its configured name; "the engine's ..." and other wordings stay."""
    return _ENGINE_WORD.sub(f"backend {name!r}", text)


def scrub_error(
    exc: BackendError, secrets: Iterable[str], *, address: str | None = None
) -> BackendError:
    """The same error with `secrets` taken out of its message and its kept upstream body,
    and the engine's `address` (its base URL) out of its message."""
    secrets = tuple(secrets)
    message = hide_address(redact(exc.message, secrets), address)
    if message != exc.message:
        exc.message = message
        exc.args = (message,)
    if exc.raw and secrets:
        exc.raw = redact(exc.raw, secrets)
    return exc
