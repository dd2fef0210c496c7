#!/usr/bin/env bash
# Re-make the captures in this folder: run each coding agent one-shot against
# tests/clients/recorder.py and keep what it sent, one JSON-lines file per agent and scenario.
#
#   docs/captures/clients/capture.sh [SCENARIO...]     (default: all; see the list at the end)
#
# Needs the agents installed with npm under ~/.cache/modelport/npm/<name>-<version> (see
# README.md) and a Python with aiohttp (PYTHON, default .venv/bin/python of the checkout).
# Every agent runs under `env -i` with its own fresh HOME and working directory below
# $CAPTURE_TMP, so nothing of this machine's environment or config leaks into a capture.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
NPM_CACHE=${NPM_CACHE:-$HOME/.cache/modelport/npm}
CAPTURE_TMP=${CAPTURE_TMP:-/tmp/mp-cap}
CLAUDE=$NPM_CACHE/claude-code-2.1.332/node_modules/.bin/claude
CODEX=$NPM_CACHE/codex-0.171.0/node_modules/.bin/codex
OPENCODE=$NPM_CACHE/opencode-ai-1.18.33/node_modules/.bin/opencode
TIMEOUT=${TIMEOUT:-180}

# run NAME SETUP [recorder args...] -- [VAR=value...] -- COMMAND...
# SETUP is a function run with $DIR and $PORT set, before the agent starts.
run() {
  local name=$1 setup=$2
  shift 2
  local rargs=() envs=() dir=$CAPTURE_TMP/$name
  while [ "$1" != "--" ]; do rargs+=("$1"); shift; done; shift
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done; shift
  rm -rf "$dir" && mkdir -p "$dir/home" "$dir/work"
  "$PYTHON" "$ROOT/tests/clients/recorder.py" --log "$dir/requests.jsonl" "${rargs[@]}" \
    >"$dir/recorder.out" 2>&1 &
  local recorder=$!
  for _ in $(seq 100); do grep -q listening "$dir/recorder.out" 2>/dev/null && break; sleep 0.1; done
  PORT=$(sed -n 's/.*127\.0\.0\.1:\([0-9]*\).*/\1/p' "$dir/recorder.out")
  DIR=$dir
  "$setup"
  local expanded=() item
  for item in "${envs[@]}"; do expanded+=("${item//@PORT@/$PORT}"); done
  local started ended rc
  started=$(date +%s.%N)
  (cd "$dir/work" && timeout "$TIMEOUT" env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$dir/home" \
    TERM=dumb LANG=C.UTF-8 "${expanded[@]}" "$@" >"$dir/stdout" 2>"$dir/stderr" </dev/null)
  rc=$?
  ended=$(date +%s.%N)
  kill "$recorder"
  wait "$recorder" 2>/dev/null
  printf '%s rc=%s seconds=%.1f requests=%s stdout=%q\n' "$name" "$rc" \
    "$(echo "$ended - $started" | bc)" "$(wc -l <"$dir/requests.jsonl")" \
    "$(head -c 200 "$dir/stdout")" | tee -a "$CAPTURE_TMP/results.txt"
  cp "$dir/requests.jsonl" "$HERE/$name.jsonl"
}

no_setup() { :; }

codex_config() {
  mkdir -p "$DIR/home/.codex"
  cat >"$DIR/home/.codex/config.toml" <<TOML
model = "some-model"
model_provider = "mp"
check_for_update_on_startup = false

[model_providers.mp]
name = "modelport"
base_url = "http://127.0.0.1:$PORT/v1"
env_key = "MP_API_KEY"
wire_api = "responses"

[analytics]
enabled = false

[feedback]
enabled = false
TOML
}

# Only what points Codex at the recorder: no analytics, feedback or update switches.
codex_minimal_config() {
  codex_config
  sed -i '/^check_for_update_on_startup/d; /^\[analytics\]/,$d' "$DIR/home/.codex/config.toml"
}

opencode_config() {
  local provider=${OPENCODE_PROVIDER_NPM:-@ai-sdk/openai-compatible} extra=${OPENCODE_MODEL_EXTRA:-}
  cat >"$DIR/work/opencode.json" <<JSON
{
  "\$schema": "https://opencode.ai/config.json",
  "autoupdate": false,
  "share": "disabled",
  "model": "mp/some-model",
  "provider": {
    "mp": {
      "npm": "$provider",
      "name": "modelport",
      "options": {"baseURL": "http://127.0.0.1:$PORT/v1", "apiKey": "{env:MP_API_KEY}"},
      "models": {"some-model": {"name": "some-model", "tool_call": true$extra}}
    }
  }
}
JSON
}

# The same provider through @ai-sdk/openai, which speaks the Responses API.
opencode_responses_config() { OPENCODE_PROVIDER_NPM=@ai-sdk/openai opencode_config; }

# A 2x2 red PNG, made here so no binary file sits in the repository.
png_file() {
  "$PYTHON" - "$DIR/work/pic.png" <<'PY'
import struct, sys, zlib
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
rows = b"".join(b"\x00" + b"\xff\x00\x00" * 2 for _ in range(2))
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
png += chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
open(sys.argv[1], "wb").write(png)
PY
}
codex_config_png() { codex_config; png_file; }
# Without declared image input opencode replaces the image by an error text for the model.
opencode_config_png() {
  OPENCODE_MODEL_EXTRA=', "attachment": true, "modalities": {"input": ["text", "image"], "output": ["text"]}' \
    opencode_config
  png_file
}

hello_file() { echo "the file says 42" >"$DIR/work/hello.txt"; }

CLAUDE_ENV=(ANTHROPIC_BASE_URL=http://127.0.0.1:@PORT@ ANTHROPIC_API_KEY=test-key
  ANTHROPIC_MODEL=some-model CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 DISABLE_TELEMETRY=1
  DISABLE_AUTOUPDATER=1)
CODEX_ENV=(MP_API_KEY=test-key)
CODEX_FLAGS=(exec --strict-config --skip-git-repo-check)
OPENCODE_ENV=(MP_API_KEY=test-key OPENCODE_DISABLE_AUTOUPDATE=1 OPENCODE_DISABLE_MODELS_FETCH=1
  OPENCODE_DISABLE_SHARE=1 OPENCODE_DISABLE_LSP_DOWNLOAD=1 OPENCODE_DISABLE_CLAUDE_CODE=1)
ECHO_CLAUDE='{"command": "echo hi", "description": "Print hi"}'

claude-code-text() { run "$FUNCNAME" no_setup -- "${CLAUDE_ENV[@]}" -- "$CLAUDE" -p "say hi"; }
claude-code-tool-read() {
  run "$FUNCNAME" hello_file --tool-name Read \
    --tool-args "{\"file_path\": \"$CAPTURE_TMP/$FUNCNAME/work/hello.txt\"}" \
    -- "${CLAUDE_ENV[@]}" -- "$CLAUDE" -p "read hello.txt"
}
claude-code-tool-bash() {
  run "$FUNCNAME" no_setup --tool-name Bash --tool-args "$ECHO_CLAUDE" \
    -- "${CLAUDE_ENV[@]}" -- "$CLAUDE" -p "run echo hi" --allowedTools "Bash(echo:*)"
}
claude-code-tool-bash-thinking() {
  run "$FUNCNAME" no_setup --tool-name Bash --tool-args "$ECHO_CLAUDE" --reasoning "I should run it." \
    -- "${CLAUDE_ENV[@]}" -- "$CLAUDE" -p "run echo hi" --allowedTools "Bash(echo:*)"
}
# Without the traffic switches and without ANTHROPIC_MODEL: what else reaches the base URL.
claude-code-text-defaults() {
  run "$FUNCNAME" no_setup -- ANTHROPIC_BASE_URL=http://127.0.0.1:@PORT@ \
    ANTHROPIC_API_KEY=test-key -- "$CLAUDE" -p "say hi"
}
codex-text() { run "$FUNCNAME" codex_config -- "${CODEX_ENV[@]}" -- "$CODEX" "${CODEX_FLAGS[@]}" "say hi"; }
codex-tool-exec() {
  run "$FUNCNAME" codex_config --tool-name exec_command --tool-args '{"cmd": "echo hi"}' \
    -- "${CODEX_ENV[@]}" -- "$CODEX" "${CODEX_FLAGS[@]}" "run echo hi"
}
codex-tool-exec-reasoning() {
  run "$FUNCNAME" codex_config --tool-name exec_command --tool-args '{"cmd": "echo hi"}' \
    --reasoning "I should run it." -- "${CODEX_ENV[@]}" -- "$CODEX" "${CODEX_FLAGS[@]}" "run echo hi"
}
codex-text-defaults() {
  run "$FUNCNAME" codex_minimal_config -- "${CODEX_ENV[@]}" -- "$CODEX" "${CODEX_FLAGS[@]}" "say hi"
}
# A model Codex knows (from its bundled model list) gets other tools and reasoning settings.
codex-text-known-model() {
  run "$FUNCNAME" codex_config -- "${CODEX_ENV[@]}" -- "$CODEX" "${CODEX_FLAGS[@]}" -m gpt-6.2-sol "say hi"
}
# With a known model, the one tool is the freeform (custom) `exec`: JavaScript that calls tools.
codex-tool-custom-exec() {
  run "$FUNCNAME" codex_config --tool-name exec \
    --tool-args '{"input": "const r = await tools.exec_command({cmd: \"echo hi\"});\ntext(r.output);"}' \
    -- "${CODEX_ENV[@]}" -- "$CODEX" "${CODEX_FLAGS[@]}" -m gpt-6.2-sol "run echo hi"
}
# A call of a function inside a `namespace` tool (multi_agent_v1.close_agent on no agent).
codex-tool-namespace() {
  run "$FUNCNAME" codex_config --tool-name close_agent --tool-args '{"target": "no-such-agent"}' \
    -- "${CODEX_ENV[@]}" -- "$CODEX" "${CODEX_FLAGS[@]}" "close agent no-such-agent"
}
opencode-text() { run "$FUNCNAME" opencode_config -- "${OPENCODE_ENV[@]}" -- "$OPENCODE" run "say hi"; }
opencode-tool-bash() {
  run "$FUNCNAME" opencode_config --tool-name bash --tool-args "$ECHO_CLAUDE" \
    -- "${OPENCODE_ENV[@]}" -- "$OPENCODE" run "run echo hi"
}
opencode-tool-bash-reasoning() {
  run "$FUNCNAME" opencode_config --tool-name bash --tool-args "$ECHO_CLAUDE" \
    --reasoning "I should run it." -- "${OPENCODE_ENV[@]}" -- "$OPENCODE" run "run echo hi"
}
# Without the OPENCODE_DISABLE_* switches: does anything more reach the base URL, or hang?
opencode-text-defaults() {
  run "$FUNCNAME" opencode_config -- MP_API_KEY=test-key -- "$OPENCODE" run "say hi"
}
# opencode looks up npm packages at run time; here its registry is the recorder (404s).
opencode-text-registry-local() {
  run "$FUNCNAME" opencode_config -- "${OPENCODE_ENV[@]}" \
    npm_config_registry=http://127.0.0.1:@PORT@/npm/ -- "$OPENCODE" run "say hi"
}
opencode-responses-text() {
  run "$FUNCNAME" opencode_responses_config -- "${OPENCODE_ENV[@]}" -- "$OPENCODE" run "say hi"
}
opencode-responses-tool-bash-reasoning() {
  run "$FUNCNAME" opencode_responses_config --tool-name bash --tool-args "$ECHO_CLAUDE" \
    --reasoning "I should run it." -- "${OPENCODE_ENV[@]}" -- "$OPENCODE" run "run echo hi"
}
# Images: Claude Code reads one with its Read tool; Codex and opencode attach one to the prompt
# (their -i/-f take several values, so they go after the prompt).
claude-code-tool-read-image() {
  run "$FUNCNAME" png_file --tool-name Read \
    --tool-args "{\"file_path\": \"$CAPTURE_TMP/$FUNCNAME/work/pic.png\"}" \
    -- "${CLAUDE_ENV[@]}" -- "$CLAUDE" -p "look at pic.png"
}
codex-image() {
  run "$FUNCNAME" codex_config_png -- "${CODEX_ENV[@]}" -- "$CODEX" "${CODEX_FLAGS[@]}" \
    "what is in this picture" -i pic.png
}
opencode-image() {
  run "$FUNCNAME" opencode_config_png -- "${OPENCODE_ENV[@]}" -- "$OPENCODE" run \
    "what is in this picture" -f pic.png
}
# A second prompt continuing the first session: how the history (the assistant's text) comes back.
claude-code-second-turn() {
  run "$FUNCNAME" no_setup -- "${CLAUDE_ENV[@]}" -- sh -c \
    "'$CLAUDE' -p 'say hi' && '$CLAUDE' -p --continue 'say hi again'"
}
codex-second-turn() {
  run "$FUNCNAME" codex_config -- "${CODEX_ENV[@]}" -- sh -c "'$CODEX' ${CODEX_FLAGS[*]} 'say hi' \
    && '$CODEX' exec resume --skip-git-repo-check --last 'say hi again'"
}
opencode-second-turn() {
  run "$FUNCNAME" opencode_config -- "${OPENCODE_ENV[@]}" -- sh -c \
    "'$OPENCODE' run 'say hi' && '$OPENCODE' run --continue 'say hi again'"
}
# How each agent takes a 400 (as the gateway answers Claude Code today): retries, exit code.
claude-code-refused-400() {
  run "$FUNCNAME" no_setup --fail-status 400 -- "${CLAUDE_ENV[@]}" -- "$CLAUDE" -p "say hi"
}
codex-refused-400() {
  run "$FUNCNAME" codex_config --fail-status 400 -- "${CODEX_ENV[@]}" -- "$CODEX" "${CODEX_FLAGS[@]}" "say hi"
}
opencode-refused-400() {
  run "$FUNCNAME" opencode_config --fail-status 400 -- "${OPENCODE_ENV[@]}" -- "$OPENCODE" run "say hi"
}
# And a 500: who retries, how often, how long (default retry settings).
claude-code-refused-500() {
  run "$FUNCNAME" no_setup --fail-status 500 -- "${CLAUDE_ENV[@]}" -- "$CLAUDE" -p "say hi"
}
codex-refused-500() {
  run "$FUNCNAME" codex_config --fail-status 500 -- "${CODEX_ENV[@]}" -- "$CODEX" "${CODEX_FLAGS[@]}" "say hi"
}
opencode-refused-500() {
  run "$FUNCNAME" opencode_config --fail-status 500 -- "${OPENCODE_ENV[@]}" -- "$OPENCODE" run "say hi"
}

ALL=(
  claude-code-text claude-code-tool-read claude-code-tool-bash claude-code-tool-bash-thinking
  claude-code-text-defaults claude-code-second-turn
  codex-text codex-tool-exec codex-tool-exec-reasoning codex-tool-namespace codex-text-defaults
  codex-text-known-model codex-tool-custom-exec codex-second-turn
  opencode-text opencode-tool-bash opencode-tool-bash-reasoning opencode-text-defaults
  opencode-text-registry-local opencode-responses-text opencode-responses-tool-bash-reasoning
  opencode-second-turn
  claude-code-tool-read-image codex-image opencode-image
  claude-code-refused-400 codex-refused-400 opencode-refused-400
  claude-code-refused-500 codex-refused-500 opencode-refused-500
)
mkdir -p "$CAPTURE_TMP"
for scenario in "${@:-${ALL[@]}}"; do "$scenario"; done
