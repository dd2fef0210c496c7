"""Images on every engine that sees them (issue 10, point 5).

What a model can do is a tri-state: known yes, known no, unknown. Known no is refused
before any engine; unknown is let through and the engine's refusal becomes a 400 naming
the model; config beats what the engine reports. The engines' refusals are the real ones
(docs/wire.md): llama-server without --mmproj answers 500 "image input is not supported"
(measured on the bundled b11434 build), vLLM 400 "<model> is not a multimodal model"
(vllm/multimodal/registry.py `create_processor`).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from aiohttp import web

from tests.fakes import FakeEngine, Reply
from tests.fakes.catalog import llamacpp_props
from tests.gateway.helpers import chat_requests, get, post

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 32).decode()
DATA_URL = f"data:image/png;base64,{PNG}"

VLLM_REFUSAL = {
    "error": {
        "message": "Qwen/Qwen3-0.6B is not a multimodal model",
        "type": "BadRequestError",
        "param": None,
        "code": 400,
    }
}
LLAMACPP_REFUSAL = {
    "error": {
        "code": 500,
        "message": "image input is not supported - hint: if this is unexpected, "
        "you may need to provide the mmproj",
        "type": "server_error",
    }
}


def openai_image_body(model: str, *, stream: bool = False) -> dict[str, Any]:
    return {
        "model": model,
        "stream": stream,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": DATA_URL}},
                ],
            }
        ],
    }


def anthropic_image_body(model: str, *, stream: bool = False) -> dict[str, Any]:
    return {
        "model": model,
        "max_tokens": 10,
        "stream": stream,
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                    },
                    {"type": "text", "text": "what is this?"},
                ],
            }
        ],
    }


def toml(kind: str, fake: FakeEngine, *extra: str, name: str | None = None) -> str:
    lines = ["[[backends]]", f'kind = "{kind}"', f'url = "{fake.url}"']
    if name is not None:
        lines.append(f'name = "{name}"')
    return "\n".join([*lines, *extra]) + "\n"


def saw_image(fake: FakeEngine) -> bool:
    """Whether the image's bytes reached the engine in some chat request."""
    return any(PNG in r.body.decode() for r in chat_requests(fake))


async def model_entry(url: str, model: str) -> dict[str, Any]:
    status, _, raw = await get(url, "/v1/models")
    assert status == 200, raw
    return next(m for m in json.loads(raw)["data"] if m["id"] == model)


# -- unknown: let through ---------------------------------------------------------------------


async def test_images_reach_a_vllm_engine_whose_list_says_nothing_of_them(
    fake_engine, gateway
) -> None:
    """vLLM's /v1/models says nothing of modalities: the images go through, relayed as
    they came (OpenAI and Anthropic clients alike: vLLM speaks both)."""
    vllm = await fake_engine("vllm", models=["Qwen/Qwen2.5-VL-7B-Instruct"])
    _gw, url = await gateway(toml("vllm", vllm))
    assert (await model_entry(url, "Qwen/Qwen2.5-VL-7B-Instruct"))["capabilities"]["vision"] is None

    status, _, raw = await post(
        url, "/v1/chat/completions", openai_image_body("Qwen/Qwen2.5-VL-7B-Instruct")
    )
    assert status == 200, raw
    status, _, raw = await post(
        url, "/v1/messages", anthropic_image_body("Qwen/Qwen2.5-VL-7B-Instruct", stream=True)
    )
    assert status == 200, raw
    assert [r.path for r in chat_requests(vllm)] == ["/v1/chat/completions", "/v1/messages"]
    assert all(PNG in r.body.decode() for r in chat_requests(vllm))


async def test_images_reach_an_openai_compatible_engine_transcoded(fake_engine, gateway) -> None:
    """An Anthropic client's image, transcoded to Chat Completions for a server that
    speaks only those and says nothing of images."""
    fake = await fake_engine("localai", models=["llava-1.6"])
    _gw, url = await gateway(toml("openai-compatible", fake))
    status, _, raw = await post(url, "/v1/messages", anthropic_image_body("llava-1.6"))
    assert status == 200, raw
    assert json.loads(raw)["content"][0]["text"] == "Hello from the fake."
    (sent,) = chat_requests(fake)
    assert sent.path == "/v1/chat/completions"
    parts = sent.json["messages"][-1]["content"]
    assert {"type": "image_url", "image_url": {"url": DATA_URL}} in parts


# -- the engine's refusal: a clear 400 --------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
async def test_vllms_refusal_of_images_is_a_400_naming_the_model(
    fake_engine, gateway, clients, stream: bool
) -> None:
    vllm = await fake_engine("vllm", models=["Qwen/Qwen3-0.6B"])
    vllm.replies.extend([Reply(status=400, error_body=VLLM_REFUSAL) for _ in range(2)])
    _gw, url = await gateway(toml("vllm", vllm))

    status, _, raw = await post(
        url, "/v1/chat/completions", openai_image_body("Qwen/Qwen3-0.6B", stream=stream)
    )
    assert status == 400, raw
    error = json.loads(raw)["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"] == (
        "model 'Qwen/Qwen3-0.6B' does not accept images "
        "(the engine said: Qwen/Qwen3-0.6B is not a multimodal model)"
    )

    status, _, raw = await post(
        url, "/v1/messages", anthropic_image_body("Qwen/Qwen3-0.6B", stream=stream)
    )
    assert status == 400, raw
    payload = json.loads(raw)
    assert payload["type"] == "error"
    assert payload["error"]["type"] == "invalid_request_error"
    assert payload["error"]["message"].startswith("model 'Qwen/Qwen3-0.6B' does not accept images")
    assert len(chat_requests(vllm)) == 2  # the engine was asked: nothing said it could not
    # A refusal is the request's fault: the engine stays trusted.
    assert _gw.router.by_name("vllm").breaker.failures == 0  # type: ignore[union-attr]


async def test_llama_server_without_modalities_refuses_with_a_500_that_becomes_a_400(
    fake_engine, gateway
) -> None:
    """An older llama-server whose /props has no `modalities` and whose model list no
    `input_modalities`: nothing known, so the request goes; its 500 is the request's fault."""
    fake = await fake_engine("llamacpp", models=["gemma.gguf"])
    old_props = {k: v for k, v in llamacpp_props(fake).items() if k != "modalities"}
    listed = {"object": "list", "data": [{"id": "gemma.gguf", "object": "model"}]}
    fake.route("GET", "/props", _static(fake, old_props))
    fake.route("GET", "/v1/models", _static(fake, listed))
    fake.replies.append(Reply(status=500, error_body=LLAMACPP_REFUSAL))
    _gw, url = await gateway(toml("llamacpp", fake))
    assert (await model_entry(url, "gemma.gguf"))["capabilities"]["vision"] is None

    status, _, raw = await post(url, "/v1/chat/completions", openai_image_body("gemma.gguf"))
    assert status == 400, raw
    message = json.loads(raw)["error"]["message"]
    assert message.startswith("model 'gemma.gguf' does not accept images (the engine said: ")
    assert "image input is not supported" in message
    assert len(chat_requests(fake)) == 1


async def test_a_refusal_leaves_the_images_to_the_next_candidate(fake_engine, gateway) -> None:
    """An alias over an engine that may see images (it refuses) and one that does."""
    vllm = await fake_engine("vllm", models=["Qwen/Qwen3-0.6B"])
    vllm.replies.append(Reply(status=400, error_body=VLLM_REFUSAL))
    lmstudio = await fake_engine("lmstudio", models=["qwen2-vl-7b-instruct"])
    _gw, url = await gateway(
        toml("vllm", vllm)
        + toml("lmstudio", lmstudio)
        + '[aliases]\nlook = ["Qwen/Qwen3-0.6B", "qwen2-vl-7b-instruct"]\n'
    )
    status, headers, raw = await post(url, "/v1/chat/completions", openai_image_body("look"))
    assert status == 200, raw
    assert headers["x-modelport-backend"].startswith("lmstudio")
    assert len(chat_requests(vllm)) == 1 and saw_image(lmstudio)


# -- config beats the engine -----------------------------------------------------------------


async def test_config_refuses_images_before_the_engine(fake_engine, gateway) -> None:
    vllm = await fake_engine("vllm", models=["Qwen/Qwen3-0.6B"])
    _gw, url = await gateway(toml("vllm", vllm, "capabilities = { vision = false }"))
    assert (await model_entry(url, "Qwen/Qwen3-0.6B"))["capabilities"]["vision"] is False
    status, _, raw = await post(url, "/v1/chat/completions", openai_image_body("Qwen/Qwen3-0.6B"))
    assert status == 400, raw
    assert json.loads(raw)["error"]["message"] == "model 'Qwen/Qwen3-0.6B' does not accept images"
    assert chat_requests(vllm) == []


async def test_config_per_model_beats_the_backend_and_the_engine(fake_engine, gateway) -> None:
    """llama-server says its model is text-only (/props); config says this one sees (it was
    given a projector the gateway cannot know of), and another backend-wide setting yields."""
    fake = await fake_engine("llamacpp", models=["gemma.gguf"])
    _gw, url = await gateway(
        toml(
            "llamacpp",
            fake,
            "capabilities = { vision = false, thinking = false }",
            '[backends.model_capabilities."gemma.gguf"]',
            "vision = true",
        )
    )
    capabilities = (await model_entry(url, "gemma.gguf"))["capabilities"]
    assert capabilities["vision"] is True and capabilities["thinking"] is False
    status, _, raw = await post(url, "/v1/messages", anthropic_image_body("gemma.gguf"))
    assert status == 200, raw
    assert saw_image(fake)


async def test_config_allows_images_on_a_vllm_model(fake_engine, gateway) -> None:
    vllm = await fake_engine("vllm", models=["Qwen/Qwen2.5-VL-7B-Instruct", "Qwen/Qwen3-0.6B"])
    _gw, url = await gateway(
        toml(
            "vllm",
            vllm,
            'model_capabilities = { "Qwen/Qwen2.5-VL-7B-Instruct" = { vision = true }, '
            '"Qwen/Qwen3-0.6B" = { vision = false } }',
        )
    )
    assert (await model_entry(url, "Qwen/Qwen2.5-VL-7B-Instruct"))["capabilities"]["vision"]
    model = "Qwen/Qwen2.5-VL-7B-Instruct"
    status, _, raw = await post(url, "/v1/chat/completions", openai_image_body(model, stream=True))
    assert status == 200, raw
    status, _, raw = await post(url, "/v1/chat/completions", openai_image_body("Qwen/Qwen3-0.6B"))
    assert status == 400, raw
    assert len(chat_requests(vllm)) == 1 and saw_image(vllm)


# -- what engines report ----------------------------------------------------------------------


@pytest.mark.parametrize(("model", "vision"), [("qwen2-vl-2b.gguf", True), ("gemma.gguf", False)])
async def test_llama_server_props_modalities_decide(
    fake_engine, gateway, model: str, vision: bool
) -> None:
    fake = await fake_engine("llamacpp", models=[model])
    assert llamacpp_props(fake)["modalities"]["vision"] is vision
    _gw, url = await gateway(toml("llamacpp", fake))
    assert (await model_entry(url, model))["capabilities"]["vision"] is vision
    status, _, raw = await post(url, "/v1/chat/completions", openai_image_body(model))
    assert status == (200 if vision else 400), raw
    assert saw_image(fake) is vision


async def test_llama_server_input_modalities_decide_without_props(fake_engine, gateway) -> None:
    """No /props (a proxy in front, say): /v1/models `architecture.input_modalities` says."""
    fake = await fake_engine("llamacpp", models=["qwen2-vl-2b.gguf"])
    fake.route("GET", "/props", _static(fake, {"error": "File Not Found"}, status=404))
    _gw, url = await gateway(toml("llamacpp", fake))
    assert (await model_entry(url, "qwen2-vl-2b.gguf"))["capabilities"]["vision"] is True
    status, _, raw = await post(url, "/v1/messages", anthropic_image_body("qwen2-vl-2b.gguf"))
    assert status == 200, raw
    assert saw_image(fake)


async def test_lm_studio_vlm_sees_images_and_llm_does_not(fake_engine, gateway) -> None:
    """LM Studio's /api/v0/models `type`: vlm sees, llm does not."""
    fake = await fake_engine("lmstudio", models=["qwen2-vl-7b-instruct", "qwen/qwen3-4b"])
    _gw, url = await gateway(toml("lmstudio", fake))
    assert (await model_entry(url, "qwen2-vl-7b-instruct"))["capabilities"]["vision"] is True
    assert (await model_entry(url, "qwen/qwen3-4b"))["capabilities"]["vision"] is False
    status, _, raw = await post(url, "/v1/messages", anthropic_image_body("qwen2-vl-7b-instruct"))
    assert status == 200, raw
    assert saw_image(fake)
    status, _, raw = await post(url, "/v1/chat/completions", openai_image_body("qwen/qwen3-4b"))
    assert status == 400, raw
    assert len(chat_requests(fake)) == 1


def _static(fake: FakeEngine, payload: Any, status: int = 200) -> Any:
    async def handler(request: web.Request, body: Any) -> web.StreamResponse:
        return fake.json(payload, status=status)

    return handler
