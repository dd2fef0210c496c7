"""Tests of modelport.toml loading, validation and rendering (modelport.config)."""
