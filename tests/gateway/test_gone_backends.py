"""/metrics after the router drops a local backend: its state gauges go at once, what it
served once it has been gone `forget_gone_backend_s`, the others' series stay; a backend
removed while the router was asking it is not reported again. Real engine fakes and a real
gateway; /metrics is read over HTTP as a scraper reads it."""

from __future__ import annotations

import asyncio

from aiohttp import web

from tests.gateway.helpers import HI, backend, eventually_empty, post, series_of

STATE = ("modelport_backend_ready", "modelport_in_flight", "modelport_queued")


async def test_a_removed_backend_leaves_metrics_and_the_others_stay(fake_engine, gateway) -> None:
    first = await fake_engine("vllm", models=["m1"])
    second = await fake_engine("vllm", models=["m2"])
    # "twin" is the same engine under another label: the same backend id, so the same series.
    backends = [
        backend("vllm", first, name="a"),
        backend("vllm", first, name="twin"),
        backend("vllm", second, name="b"),
    ]
    gw, url = await gateway(backends=backends, ledger=False, forget_gone_backend_s=1.0)
    gone, kept = f"vllm:{first.url}", f"vllm:{second.url}"
    for model in ("m1", "m2"):
        status, _, body = await post(url, "/v1/chat/completions", {"model": model, "messages": HI})
        assert status == 200, body
    before = await series_of(url, gone)
    assert set(STATE) <= set(before) and before["modelport_requests_total"] == [1.0], before

    # One of two upstreams with its backend id goes: the other still has state to show.
    assert await gw.router.remove("a") is not None
    assert set(STATE) <= set(await series_of(url, gone))

    # The last one goes: no state stuck at its last value; what it served stays a while.
    assert await gw.router.remove("twin") is not None
    after = await series_of(url, gone)
    assert not set(STATE) & set(after), after
    assert after["modelport_requests_total"] == [1.0]

    # Gone for good: nothing left of it; the backend still served keeps every series.
    assert await eventually_empty(url, gone)
    others = await series_of(url, kept)
    assert set(STATE) <= set(others) and others["modelport_requests_total"] == [1.0], others


async def test_a_backend_removed_while_it_is_asked_is_not_reported_again(
    fake_engine, gateway
) -> None:
    asked, answer = asyncio.Event(), asyncio.Event()
    answer.set()
    models = {"object": "list", "data": [{"id": "slow-model", "object": "model"}]}

    async def engine(request: web.Request) -> web.StreamResponse:
        """A vLLM-shaped engine whose health and model list wait for `answer`."""
        asked.set()
        await answer.wait()
        if request.path == "/v1/models":
            return web.json_response(models)
        return web.Response(text="")

    app = web.Application()
    app.router.add_get("/{tail:.*}", engine)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        slow = {"kind": "vllm", "url": f"http://127.0.0.1:{port}", "name": "slow"}
        gw, url = await gateway(backends=[slow], ledger=False, forget_gone_backend_s=60.0)
        assert (await series_of(url, f"vllm:{slow['url']}"))["modelport_backend_ready"] == [1.0]

        asked.clear()
        answer.clear()
        refresh = asyncio.create_task(gw.router.refresh())
        async with asyncio.timeout(5):
            await asked.wait()  # the router is asking it now
        await gw.router.remove("slow")
        answer.set()
        await refresh
        # Its refresh ended after it was gone: no gauge of it came back.
        assert not set(STATE) & set(await series_of(url, f"vllm:{slow['url']}"))
    finally:
        answer.set()
        await runner.cleanup()
