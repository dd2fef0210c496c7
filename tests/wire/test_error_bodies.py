"""One error-body parser for every dialect: the cases where a dialect used to read less.

Each test here would fail on the old per-dialect parsers, which disagreed on these bodies.
"""

from __future__ import annotations

import pytest

from modelport.errors import ImagesRefused, InvalidRequest, ModelNotFound, Unsupported
from modelport.wire import anthropic, ollama, openai
from modelport.wire.errors import TYPE_STATUS, error_fields, status_for

DECODERS = [openai.decode_error, anthropic.decode_error, ollama.decode_error]


@pytest.mark.parametrize("decode", DECODERS)
def test_every_dialect_reads_fastapi_detail_lists_as_json(decode: object) -> None:
    body = b'{"detail": [{"loc": ["body"], "msg": "field required"}]}'
    err = decode(422, body)  # type: ignore[operator]
    assert isinstance(err, InvalidRequest)
    assert err.message == '[{"loc":["body"],"msg":"field required"}]'  # was str() in openai


@pytest.mark.parametrize("decode", DECODERS)
def test_a_json_body_naming_no_message_is_quoted_whole(decode: object) -> None:
    err = decode(400, b'{"error": {"code": "weird"}}')  # type: ignore[operator]
    assert err.message == '{"error": {"code": "weird"}}'  # openai said "HTTP 400"


@pytest.mark.parametrize("decode", DECODERS)
def test_an_invalid_request_keeps_its_param_in_every_dialect(decode: object) -> None:
    body = b'{"error": {"message": "bad", "type": "invalid_request_error", "param": "tools"}}'
    err = decode(400, body)  # type: ignore[operator]
    assert isinstance(err, InvalidRequest) and err.param == "tools"  # anthropic dropped it


@pytest.mark.parametrize("decode", DECODERS)
def test_plain_text_bodies_are_capped(decode: object) -> None:
    err = decode(500, b"x" * 2000)  # type: ignore[operator]
    assert err.message == "x" * 500  # openai kept all of it


def test_one_type_to_status_table() -> None:
    assert status_for("overloaded_error", None) == 529
    assert status_for("NotFoundError", None) == 404
    assert status_for("anything", 429) == 429
    assert status_for(None, None) == 500
    assert TYPE_STATUS["request_too_large"] == 413


def test_error_fields_ignore_the_envelope_type_word() -> None:
    fields = error_fields({"type": "error", "message": "m", "code": 503})
    assert (fields.message, fields.type, fields.code) == ("m", None, 503)


def test_openai_stream_error_for_a_missing_model_under_200() -> None:
    with pytest.raises(ModelNotFound):
        openai.decode_stream(
            b'data: {"error": {"message": "model: x", "type": "not_found_error"}}\n\n'
        )


# What engines answer for an image to a model that cannot see (issue 10, point 5): each is
# the request's fault, never retried on the same engine, never counted against it.
IMAGE_REFUSALS = [
    # llama-server without --mmproj (measured on the bundled b11434 build)
    (
        500,
        b'{"error":{"code":500,"message":"image input is not supported - hint: if this is '
        b'unexpected, you may need to provide the mmproj","type":"server_error"}}',
    ),
    # vLLM, vllm/multimodal/registry.py create_processor
    (
        400,
        b'{"error":{"message":"Qwen/Qwen3-0.6B is not a multimodal model",'
        b'"type":"BadRequestError","param":null,"code":400}}',
    ),
    # LM Studio (lmstudio-bug-tracker issues 362 and 908)
    (400, b'{"error":"Model does not support images. Please use a model that does."}'),
    # Ollama (model/model.go ErrNoVisionModel)
    (500, b'{"error":"this model is missing data required for image input"}'),
    # OpenAI
    (
        400,
        b'{"error":{"message":"Invalid content type. image_url is only supported by certain '
        b'models.","type":"invalid_request_error","param":"messages.[0].content.[1].type",'
        b'"code":null}}',
    ),
]


@pytest.mark.parametrize(("status", "body"), IMAGE_REFUSALS)
@pytest.mark.parametrize("decode", DECODERS)
def test_an_engines_refusal_of_images_is_images_refused(
    decode: object, status: int, body: bytes
) -> None:
    err = decode(status, body)  # type: ignore[operator]
    assert isinstance(err, ImagesRefused), err
    assert (err.status, err.retryable) == (400, False)


@pytest.mark.parametrize("decode", DECODERS)
def test_llama_servers_501_for_embeddings_is_unsupported_not_a_502(decode: object) -> None:
    body = (
        b'{"error":{"code":501,"message":"This server does not support embeddings. '
        b'Start it with `--embeddings`","type":"not_supported_error"}}'
    )
    err = decode(501, body)  # type: ignore[operator]
    assert type(err) is Unsupported
    assert (err.status, err.retryable) == (400, False)
