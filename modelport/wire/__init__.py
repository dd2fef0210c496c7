"""Pure codecs between wire bytes and the canonical types. No I/O happens here."""
