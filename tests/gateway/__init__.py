"""Tests of the gateway (modelport.gateway, modelport.service) through real HTTP.

Every test starts a real Gateway on 127.0.0.1 over FakeEngines (tests/fakes) and talks to it
as a client would (official SDKs or raw aiohttp). Shared raw-HTTP helpers are in helpers.py;
the gateway and clients fixtures in tests/gateway_harness.py.
"""
