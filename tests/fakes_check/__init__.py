"""Tests of the protocol fakes themselves (tests/fakes): they send the wire docs/wire.md describes.

Checked with a plain aiohttp.ClientSession and a hand parser, never with modelport's codecs.
"""
