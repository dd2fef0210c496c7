// Drive the `ollama` npm package (ollama-js) against a running tests/clients/ollama_recorder.py.
// Usage: OLLAMA_JS=/tmp/ollamajs/node_modules/ollama node tests/clients/capture_ollama_js.cjs URL SCENARIO
// Prints what the library returned, as JSON, on stdout.
const { Ollama } = require(process.env.OLLAMA_JS || "ollama");

const MODEL = "some-model";
const HI = [{ role: "user", content: "say hi" }];
const PNG = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==",
  "base64",
);
const WEATHER_TOOL = {
  type: "function",
  function: {
    name: "get_weather",
    description: "The weather in a city",
    parameters: {
      type: "object",
      properties: { city: { type: "string", description: "the city" } },
      required: ["city"],
    },
  },
};

async function collect(iterator) {
  const parts = [];
  for await (const part of iterator) parts.push(part);
  return parts;
}

const scenarios = {
  list: (c) => c.list(),
  show: (c) => c.show({ model: MODEL }),
  ps: (c) => c.ps(),
  chat: (c) => c.chat({ model: MODEL, messages: HI }),
  "chat-stream": async (c) => collect(await c.chat({ model: MODEL, messages: HI, stream: true })),
  "chat-tools": (c) => c.chat({ model: MODEL, messages: HI, tools: [WEATHER_TOOL], think: true }),
  "chat-images": (c) =>
    c.chat({ model: MODEL, messages: [{ role: "user", content: "what is it", images: [new Uint8Array(PNG)] }] }),
  "generate-stream": async (c) =>
    collect(await c.generate({ model: MODEL, prompt: "def f(", suffix: ")", stream: true })),
  embed: (c) => c.embed({ model: MODEL, input: ["one", "two"] }),
  "show-missing": (c) => c.show({ model: "missing-model" }),
};

async function main() {
  const [host, name] = process.argv.slice(2);
  const client = new Ollama({ host });
  try {
    console.log(JSON.stringify(await scenarios[name](client)));
  } catch (error) {
    console.log(JSON.stringify({ thrown: error.name, message: error.message, status: error.status_code }));
  }
}

main();
