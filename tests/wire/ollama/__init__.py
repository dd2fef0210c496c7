"""Tests of the native Ollama codec (modelport.wire.ollama)."""
