"""The provider protocol's frames, as usepod-agent 0.3.x writes and reads them."""

from __future__ import annotations

import json

import pytest

from modelport.wire import provider as p


def test_a_job_keeps_its_request_as_the_bytes_the_hub_sent() -> None:
    body = b'{"model":"m","messages":[{"role":"user","content":"hi"}]}'
    frame = p.decode_hub_frame(
        b'{"type":"job","job_id":"j1","model_id":"m","request":' + body + b"}"
    )
    assert isinstance(frame, p.Job)
    assert bytes(frame.request) == body
    # usepod-agent's parse_job defaults
    assert (frame.format, frame.deadline_ms) == ("openai", 60_000)


def test_unknown_types_decode_to_none_and_malformed_frames_raise() -> None:
    assert p.decode_hub_frame('{"type":"config_update","x":1}') is None
    assert p.decode_agent_frame('{"type":"telemetry"}') is None
    with pytest.raises(p.FrameError, match="job"):
        p.decode_hub_frame('{"type":"job","job_id":"j"}')
    with pytest.raises(p.FrameError, match="not JSON"):
        p.decode_hub_frame("{")
    with pytest.raises(p.FrameError, match="untyped"):
        p.decode_agent_frame('{"job_id":"j"}')


def test_chunk_data_is_standard_base64_of_the_raw_bytes() -> None:
    raw = b'data: {"a":1}\n\ndata: [DO'
    wire = json.loads(p.encode(p.JobChunk("j", raw)))
    assert wire == {"type": "job_chunk", "job_id": "j", "data": "ZGF0YTogeyJhIjoxfQoKZGF0YTogW0RP"}
    assert p.decode_agent_frame(p.encode(p.JobChunk("j", raw))) == p.JobChunk("j", raw)


def test_capabilities_omit_an_unknown_context_window_and_send_null_limits() -> None:
    caps = p.Capabilities(
        [p.CapabilityModel("m", 500_000, 750_000, 8, "vllm")],
        p.CapabilityLimits(8),
        p.AgentMetadata(agent_version="0.3.3"),
    )
    assert json.loads(p.encode(caps)) == {
        "type": "capabilities",
        "models": [
            {
                "model_id": "m",
                "input_per_1m": 500_000,
                "output_per_1m": 750_000,
                "max_concurrent": 8,
                "backend": "vllm",
            }
        ],
        "limits": {"max_concurrent_total": 8, "max_tokens_per_minute": None},
        "metadata": {"agent_version": "0.3.3"},
    }


def test_job_done_carries_each_count_under_both_names() -> None:
    done = json.loads(p.encode(p.JobDone("j", p.tokens(12, 34), 56)))
    assert done["tokens"] == {"input": 12, "output": 34, "input_tokens": 12, "output_tokens": 34}


def test_a_usepod_heartbeat_of_zeros_decodes() -> None:
    # heartbeat.rs sends exactly these keys, with nulls for the last error
    frame = p.decode_agent_frame(
        '{"type":"heartbeat","queue_depth":0,"tokens_per_sec_p50":0.0,"p50_latency_ms":0,'
        '"p95_latency_ms":0,"error_rate_60s":0.0,"last_error_at":null,"last_error_code":null}'
    )
    assert frame == p.Heartbeat()
