"""The HTTP surface: an aiohttp app that speaks the OpenAI and Anthropic APIs."""
