"""Tests of the protocol fakes themselves (tests/fakes): they send the wire WIRE.md describes."""
