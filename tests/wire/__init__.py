"""Tests of the codecs (modelport.wire): pure, no I/O."""
