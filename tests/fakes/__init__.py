"""Protocol fakes: real aiohttp servers on 127.0.0.1 replaying each engine's wire, quirks included.

    async with FakeEngine("llamacpp") as fake:
        fake.replies.append(Reply(text="hi", thinking="hmm", tool_calls=[(None, "f", {"a": 1})]))
        ...  # point a client at fake.url

Independent of modelport's codecs by design: every byte is built here by hand.
"""

from .core import DEFAULT_ERROR_MESSAGE, Headers, Recorded, Reply, fake_vector
from .engine import KINDS, FakeEngine

__all__ = [
    "DEFAULT_ERROR_MESSAGE",
    "KINDS",
    "FakeEngine",
    "Headers",
    "Recorded",
    "Reply",
    "fake_vector",
]
