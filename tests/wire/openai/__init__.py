"""Tests of the OpenAI Chat Completions codec (modelport.wire.openai): quirks in docs/wire.md."""
