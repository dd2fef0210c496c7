"""Tests of the backends (modelport.backends) against the protocol fakes."""
