"""Tests of the OpenAI Responses codec (modelport.wire.responses)."""
