"""Drive the `ollama` Python library against tests/clients/ollama_recorder.py, one log per call.

Run from the repository root with a Python that has `ollama` and aiohttp:
    python -m tests.clients.capture_ollama [--out docs/captures/clients] [scenario...]
Each scenario writes <out>/ollama-py-<scenario>.jsonl and prints what the library returned.
"""

from __future__ import annotations

import argparse
import base64
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ollama

MODEL = "some-model"
# A 1x1 PNG: what an image reaches the wire as (the library base64-encodes bytes and paths).
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "the city"}},
            "required": ["city"],
        },
    },
}
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
HI = [{"role": "user", "content": "say hi"}]


def get_weather(city: str) -> str:
    """The weather in a city.

    Args:
      city: the city
    """
    return f"sunny in {city}"


def chat_tools(client: ollama.Client) -> Any:
    first = client.chat(MODEL, messages=HI, tools=[WEATHER_TOOL], stream=False)
    calls = first.message.tool_calls or []
    messages: list[Any] = [*HI, first.message]
    for call in calls:
        result = get_weather(**call.function.arguments)
        messages.append({"role": "tool", "content": result, "tool_name": call.function.name})
    second = client.chat(MODEL, messages=messages, tools=[get_weather], stream=False)
    return [first, second]


SCENARIOS: dict[str, Callable[[ollama.Client], Any]] = {
    "root": lambda c: (c._client.head("/").status_code, c._client.get("/").text),
    "version": lambda c: c._client.get("/api/version").json(),
    "list": lambda c: c.list(),
    "show": lambda c: c.show(MODEL),
    "show-missing": lambda c: c.show("missing-model"),
    "ps": lambda c: c.ps(),
    "chat": lambda c: c.chat(MODEL, messages=HI),
    "chat-stream": lambda c: list(c.chat(MODEL, messages=HI, stream=True)),
    "chat-tools": chat_tools,
    "chat-tools-stream": lambda c: list(
        c.chat(MODEL, messages=HI, tools=[WEATHER_TOOL], stream=True)
    ),
    "chat-think": lambda c: c.chat(MODEL, messages=HI, think=True),
    "chat-think-level": lambda c: list(c.chat(MODEL, messages=HI, think="low", stream=True)),
    "chat-format-schema": lambda c: c.chat(
        MODEL, messages=HI, format=SCHEMA, options={"temperature": 0}
    ),
    "chat-format-json": lambda c: c.chat(MODEL, messages=HI, format="json", keep_alive="10m"),
    "chat-images": lambda c: c.chat(
        MODEL, messages=[{"role": "user", "content": "what is it", "images": [PNG]}]
    ),
    "generate": lambda c: c.generate(MODEL, "say hi"),
    "generate-stream": lambda c: list(c.generate(MODEL, "say hi", stream=True)),
    "generate-suffix": lambda c: c.generate(
        MODEL,
        "def add(a, b):\n    ",
        suffix="\n    return c",
        options={"num_predict": 32, "stop": ["\n\n"]},
    ),
    "generate-options": lambda c: c.generate(
        MODEL,
        "hi",
        system="be brief",
        raw=False,
        context=[1, 2, 3],
        keep_alive=0,
        images=[PNG],
        think=False,
    ),
    "embed": lambda c: c.embed(MODEL, input=["one", "two"], truncate=True, dimensions=3),
    "embed-one": lambda c: c.embed(MODEL, input="one"),
    "embeddings": lambda c: c.embeddings(MODEL, prompt="one"),
}


JS_SCENARIOS = [
    "list",
    "show",
    "ps",
    "chat",
    "chat-stream",
    "chat-tools",
    "chat-images",
    "generate-stream",
]
JS_SCENARIOS += ["embed", "show-missing"]


def run(name: str, out: Path, js: str | None = None) -> None:
    """One scenario against a fresh recorder; `js`: the ollama npm package's folder (ollama-js)."""
    log = out / f"ollama-{'js' if js else 'py'}-{name}.jsonl"
    log.unlink(missing_ok=True)
    recorder = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.clients.ollama_recorder",
            "--log",
            str(log),
            "--model",
            MODEL,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert recorder.stdout is not None
        url = recorder.stdout.readline().split()[-1]
        if js:
            script = str(Path(__file__).with_name("capture_ollama_js.cjs"))
            node = subprocess.run(
                ["node", script, url, name],
                env={"OLLAMA_JS": js, "PATH": "/usr/bin:/usr/local/bin:/bin"},
                capture_output=True,
                text=True,
                timeout=60,
            )
            print(f"== js {name}: {node.stdout.strip()} {node.stderr.strip()}"[:2000])
            return
        client = ollama.Client(host=url)
        try:
            result: Any = SCENARIOS[name](client)
        except ollama.ResponseError as error:
            result = f"ResponseError({error.error!r}, status_code={error.status_code})"
        print(f"== {name}: {result!r}"[:2000])
    finally:
        recorder.terminate()
        recorder.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/captures/clients")
    parser.add_argument(
        "--js", default=None, help="folder of the ollama npm package: drive ollama-js"
    )
    parser.add_argument("scenarios", nargs="*")
    args = parser.parse_args()
    for scenario in args.scenarios or (JS_SCENARIOS if args.js else list(SCENARIOS)):
        run(scenario, Path(args.out), args.js)
