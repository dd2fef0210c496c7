"""A whole (non-streamed) answer collected from an agent's job has an id, as an engine's
answer has: OpenAI's `chatcmpl-...` (and so Anthropic's message id) was "" before, the
first thing a `curl` through the hub showed (found following README's hub setup)."""

from __future__ import annotations

import aiohttp

from tests.fakes.engine import FakeEngine
from tests.hub.agents import ScriptedAgent, ws_url
from tests.hub.test_jobs import OPENAI_BODY


async def test_a_whole_answer_through_an_agent_has_an_id(hub_gateway) -> None:
    async with FakeEngine("vllm", models=["fake-model"]) as engine:
        _, url = await hub_gateway()
        async with ScriptedAgent(ws_url(url), engine.url) as agent:
            await agent.connect()
            ids = []
            async with aiohttp.ClientSession() as http:
                for _ in range(2):
                    answer = await http.post(url + "/v1/chat/completions", json=OPENAI_BODY)
                    assert answer.status == 200, await answer.text()
                    ids.append((await answer.json())["id"])
                body = {**OPENAI_BODY, "max_tokens": 16}
                answer = await http.post(url + "/v1/messages", json=body)
                assert answer.status == 200, await answer.text()
                message_id = (await answer.json())["id"]
    assert all(i.startswith("chatcmpl-") and len(i) > 12 for i in ids), ids
    assert ids[0] != ids[1]
    assert message_id, message_id
