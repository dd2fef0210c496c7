"""Tests of the Anthropic Messages codec (modelport.wire.anthropic), against exact values."""
