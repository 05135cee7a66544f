#!/usr/bin/env bash
# `make demo`: the main job on an example, end to end, as a user would run it.
# validate, test, matrix, model check, build and publish (to a local deploy repo) the press-line example
# with its commissioning bench; one agent reconcile of the bench PC; the bench's runner on the recorded
# shift (predictions to a stand-in historian, /metrics, SIGTERM); a second revision whose model is too slow
# for its health gate, which the agent rolls back; then a pull request with typical mistakes.
set -euo pipefail
VENV="${1:-.venv}"
TAKT="$VENV/bin/takt"
RUNNER="$(cd "$VENV/bin" && pwd)/takt-runner"  # absolute: the agent starts it in the bundle's directory
PY="$VENV/bin/python"
TOOLS=examples/demo_tools.py
EXAMPLE=examples/press-line-anomaly
WORK="${DEMO_DIR:-out/demo}"  # kept after the demo, so the report, bundles and deploy repo can be opened
rm -rf "$WORK" && mkdir -p "$WORK"
WORK="$(cd "$WORK" && pwd)"
SPEC="$WORK/spec"
DEVICE=ipc-press-bench
STATE="$WORK/device"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
say() { printf '\033[36m-> %s\033[0m\n' "$*"; }

PIDS=()  # only the processes this script started; stopped by their id on any exit
cleanup() { for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

step "the spec repo: $EXAMPLE with its commissioning bench ($EXAMPLE/bench)"
cp -r "$EXAMPLE" "$SPEC" && rm -rf "$SPEC/updates"
cp -r "$EXAMPLE/bench/." "$SPEC/"
RUNNER_PORT="$("$PY" $TOOLS free-port)"
HISTORIAN_PORT="$("$PY" $TOOLS free-port)"
sed -i -e "s/httpPort: 18080/httpPort: $RUNNER_PORT/" -e "s/127.0.0.1:18090/127.0.0.1:$HISTORIAN_PORT/" \
  "$SPEC/specs/bench/bench.yaml"
say "The press line's spec repo, copied to $SPEC, plus a bench PC (device $DEVICE) that replays two minutes"
say "recorded on the press. Its runner will serve on port $RUNNER_PORT and post to a historian on $HISTORIAN_PORT (both free now)."

step "takt validate   (specs, protocol addresses, models on disk, every model on every target)"
"$TAKT" validate "$SPEC"
say "Every document, address and model file is consistent: nothing to fix before testing."

step "takt test   (onnxruntime: golden samples, recall with a Wilson bound, data, drift, latency, noise)"
"$TAKT" test "$SPEC" --report "$WORK/report.html" || {
  say "A gating test failed (above), so the demo stops here, as CI would. On a busy machine the latency test"
  say "can miss its p99 budget: other processes preempt the model's runs. Report: $WORK/report.html"
  exit 1
}
say "The models were run on the reference data; the gating test suites passed, so the build may ship them."
say "HTML report: $WORK/report.html ($(wc -c < "$WORK/report.html") bytes, self-contained)"

step "takt matrix   (which model runs on which target)"
"$TAKT" matrix "$SPEC"
say "The model fits the x86 and ARM PCs and the bench; the Cortex-M7 node is too small for it today."

step "takt model check   (one ONNX file against a target's pinned onnxruntime release)"
"$TAKT" model check "$SPEC/models/press_anomaly.onnx" --target ipc-arm --spec-root "$SPEC"
say "The ARM PC's older onnxruntime can load this model: every operator and the opset are supported there."

step "takt build   (one bundle per deployment x target; a second run renders nothing)"
"$TAKT" build "$SPEC" --out "$WORK/out" --no-progress || {
  say "A deployment was blocked by its gate (above): build renders no bundle for it, and the demo stops here."
  exit 1
}
"$TAKT" build "$SPEC" --out "$WORK/out" --no-progress
say "One bundle per deployment and target, named by its content: unchanged inputs give the same bundles."

step "takt keygen + takt publish to a local deploy repo   (signed desired states, one commit)"
git init -q --bare "$WORK/deploy.git"
"$TAKT" keygen --out "$WORK/keys"
"$TAKT" publish "$SPEC" --deploy-repo "$WORK/deploy.git" --branch deploy --key "$WORK/keys/takt-signing.key" \
  --build-dir "$WORK/out" --create-branch
"$TAKT" publish "$SPEC" --deploy-repo "$WORK/deploy.git" --branch deploy --key "$WORK/keys/takt-signing.key" \
  --build-dir "$WORK/out"
git --git-dir "$WORK/deploy.git" log --oneline deploy
git --git-dir "$WORK/deploy.git" ls-tree -r --name-only deploy | sed -n '1,3p;/devices/p'
say "Each device got a signed desired state (generation 1) on the deploy branch; publishing again changed nothing."

step "takt agent run --once   (device $DEVICE: fetch, verify signature and bundles, stage, health-check, switch)"
"$TAKT" agent run --repo "$WORK/deploy.git" --branch deploy --device "$DEVICE" --state-dir "$STATE" \
  --trust "$WORK/keys/takt-signing.pub" --once
"$TAKT" agent status --state-dir "$STATE"
FIRST="$(readlink "$STATE/current")"
say "The bench PC verified the signature and every file, replayed the golden samples and switched to release"
say "$(basename "$FIRST") (a release id names the device's signed list of bundles, not one bundle)."

step "takt-runner on the bench: the model on the recorded shift (file source), predictions to the historian"
CONFIG="$STATE/current/deployments/press-anomaly-bench/runner.json"
"$PY" $TOOLS historian "$HISTORIAN_PORT" "$WORK/historian.jsonl" & PIDS+=($!)
echo "\$ takt-runner --config $CONFIG --http-port $RUNNER_PORT"
"$RUNNER" --config "$CONFIG" --http-port "$RUNNER_PORT" --http-host 127.0.0.1 2> "$WORK/runner.log" & RUNNER_PID=$!
PIDS+=("$RUNNER_PID")
"$PY" $TOOLS wait-ready "$RUNNER_PORT" 60
sed 's/^/  /' "$WORK/runner.log"
sleep 5  # five seconds of the recording, the knock at 2-3 s included
say "The runner loaded the model (sha256 checked), replays the recording at its own pace and posts every prediction:"
"$PY" $TOOLS points "$WORK/historian.jsonl"
say "The same model answers on the Open Inference Protocol (POST /v2/models/press-anomaly-bench/infer):"
"$PY" $TOOLS infer "$RUNNER_PORT" press-anomaly-bench 4,3,2 180,45
"$PY" $TOOLS infer "$RUNNER_PORT" press-anomaly-bench 14,11,6 180,45
say "What Prometheus scrapes from it (an excerpt of http://127.0.0.1:$RUNNER_PORT/metrics):"
"$PY" $TOOLS metrics "$RUNNER_PORT"
kill -TERM "$RUNNER_PID"
set +e
wait "$RUNNER_PID"
code=$?
set -e
say "Stopped with SIGTERM: the runner delivered what was queued and exited with code $code (0 = a clean stop)."

step "a second revision: press-anomaly-bench 1.4.0 ($EXAMPLE/updates/bench-1.4.0), too slow for the bench's health gate"
cp -r "$EXAMPLE/updates/bench-1.4.0/." "$SPEC/"
"$TAKT" build "$SPEC" --out "$WORK/out" --no-progress
"$TAKT" publish "$SPEC" --deploy-repo "$WORK/deploy.git" --branch deploy --key "$WORK/keys/takt-signing.key" \
  --build-dir "$WORK/out"
say "1.4.0 gives the same scores and passed its lab tests, so it was built and published as generation 2."
say "But it runs a wide extra stage on every frame; the Deployment allows a p95 latency of 5 ms (healthGate.maxLatencyP95)."

step "takt agent run --once --supervise   (the agent runs the runner itself and judges the new release by it)"
set +e
"$TAKT" agent run --repo "$WORK/deploy.git" --branch deploy --device "$DEVICE" --state-dir "$STATE" \
  --trust "$WORK/keys/takt-signing.pub" --once --supervise --runner-command "$RUNNER"
code=$?
set -e
echo "exit code: $code (1 = the desired release is not running)"
"$PY" $TOOLS status "$STATE"
set +e
"$TAKT" agent status --state-dir "$STATE"
code=$?
set -e
echo "takt agent status exit code: $code (1 = not Ready: the desired generation 2 is not what runs)"
[ "$(readlink "$STATE/current")" = "$FIRST" ] && BACK="again $(basename "$FIRST"), the first release" || BACK="NOT the first release"
say "The agent started 1.4.0's runner, measured its inference latency from the runner's own histogram, found it"
say "over the budget, switched back and checked that the old runner serves again. The device runs $BACK;"
say "generation 2 is quarantined: it is not retried until a new one is published."

step "a pull request with three mistakes: a typo, a unit mismatch, a duplicate key"
cp -r "$EXAMPLE" "$WORK/pr"
sed -i '0,/samplingInterval: 100ms/s//samplingIntervall: 100ms/' "$WORK/pr/specs/datasources.yaml"
sed -i 's/unit: bar/unit: psi/' "$WORK/pr/specs/datasources.yaml"
sed -i 's/line: press, cell: "3"}/line: press, cell: "3", line: stamping}/' "$WORK/pr/specs/devices.yaml"
set +e
"$TAKT" validate "$WORK/pr"
code=$?
set -e
echo "exit code: $code (1 = spec errors found)"
say "Each mistake is named at its file, line and column, with a hint; CI fails the pull request."

step "the same findings for CI: GitHub annotations and SARIF for code scanning"
"$TAKT" validate "$WORK/pr" --format github || true
"$TAKT" validate "$WORK/pr" --format sarif --output "$WORK/takt.sarif" || true
say "SARIF written: $(wc -c < "$WORK/takt.sarif") bytes"

step "demo done: validate, test, build, publish, agent, runner, rollback, end to end"
cat <<EOT
Everything the demo made is kept in $WORK:
  $WORK/spec/           the spec repo it built (the example, its bench, and the 1.4.0 update)
  $WORK/report.html     the test report (open it in a browser)
  $WORK/out/            the bundles and index.json that takt build wrote
  $WORK/deploy.git      the deploy repository (git --git-dir $WORK/deploy.git log deploy)
  $WORK/device/         the bench PC's state: status.json, journal.log, current -> the active release,
                        runners/ (the supervised runner's log)
  $WORK/historian.jsonl the predictions the bench's runner posted
  $WORK/keys/           the signing key pair made for the demo
EOT
