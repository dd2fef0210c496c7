"""The data path shared by the gateway, the agent and the hub: a request's bytes in, a Reply out.

    service.py       Service: chat / embeddings / count_tokens -> Reply
    candidates.py    THE candidate loop (admission, breaker, fallback, one deadline)
    chat.py, embeddings.py, count_tokens.py
                     each endpoint as an operation the loop runs
    pipeline.py      THE stream pipeline (relayed or transcoded bytes -> the client's body)
    attempt.py       per-request bookkeeping that becomes a RequestRecord; the deadline
    reply.py         Reply, and errors in the client's format

docs/service.md describes the rules.
"""

from modelport.service.reply import (
    JSON,
    SSE,
    Chunks,
    Reply,
    error_reply,
    error_status,
    stream_error,
)
from modelport.service.service import Observer, Service

__all__ = [
    "JSON",
    "SSE",
    "Chunks",
    "Observer",
    "Reply",
    "Service",
    "error_reply",
    "error_status",
    "stream_error",
]
