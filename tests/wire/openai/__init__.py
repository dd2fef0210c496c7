"""Tests of the OpenAI Chat Completions codec (modelport.wire.openai): every quirk in WIRE.md."""
