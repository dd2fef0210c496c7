"""The one secret scrubber: keys we hold, key-shaped strings, URL passwords."""

from __future__ import annotations

from modelport.errors import AuthError
from modelport.scrub import (
    hide_address,
    name_engine,
    public_message,
    redact,
    redact_url,
    scrub_error,
)


def test_redact_removes_every_occurrence_of_each_secret() -> None:
    text = "key abcd1234 rejected; abcd1234 again; short ab stays"
    assert redact(text, ["abcd1234", "ab"]) == (
        "key [redacted] rejected; [redacted] again; short ab stays"
    )


def test_public_message_redacts_key_shapes_and_caps_length() -> None:
    message = "Incorrect API key provided: sk-proj-ABCDEF123456. Bearer xyz.abc " + "x " * 1000
    out = public_message(message)
    assert "sk-proj" not in out and "xyz.abc" not in out
    assert len(out) == 1000


def test_redact_url_hides_only_the_password() -> None:
    assert redact_url("http://user:s3cret@host:8000/v1") == "http://user:***@host:8000/v1"
    assert redact_url("http://host:8000/v1") == "http://host:8000/v1"
    assert redact_url("http://[bad") == "http://[bad"


def test_scrub_error_cleans_message_args_and_raw_body() -> None:
    exc = AuthError("bad key topsecret-key", raw=b'{"echo": "topsecret-key"}')
    scrubbed = scrub_error(exc, ["topsecret-key"])
    assert scrubbed is exc
    assert "topsecret-key" not in str(exc)
    assert exc.args == ("bad key [redacted]",)
    assert exc.raw == '{"echo": "[redacted]"}'


def test_hide_address_takes_the_engine_url_and_host_port_out() -> None:
    url = "http://10.0.0.5:8000/v1"
    text = "POST http://10.0.0.5:8000/v1/chat/completions failed; host 10.0.0.5:8000 is down"
    out = hide_address(text, url)
    assert "10.0.0.5:8000" not in out
    assert out == "POST the engine/chat/completions failed; host the engine is down"
    assert hide_address("nothing here", url) == "nothing here"
    assert hide_address("x", None) == "x"


def test_scrub_error_hides_the_address_from_the_message() -> None:
    exc = AuthError("bad key k3y-value at http://10.0.0.5:8000", raw=b"k3y-value")
    scrub_error(exc, ["k3y-value"], address="http://10.0.0.5:8000")
    assert exc.message == "bad key [redacted] at the engine"
    assert exc.raw == "[redacted]"


def test_name_engine_names_the_backend_in_transport_wordings_only() -> None:
    assert name_engine("cannot connect to the engine: refused", "gpu") == (
        "cannot connect to backend 'gpu': refused"
    )
    assert name_engine("the engine stopped answering", "gpu") == "backend 'gpu' stopped answering"
    assert name_engine("the engine's stream was empty", "gpu") == "the engine's stream was empty"
