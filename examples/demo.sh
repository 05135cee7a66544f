#!/usr/bin/env bash
# `make demo`: the main job on an example, as CI would run it on a pull request.
# validate, test, matrix, model check, build, publish (to a local deploy repo) and one agent
# reconcile on a clean example; then the same repo with typical mistakes (located diagnostics,
# exit 1) and the machine formats CI consumes.
set -euo pipefail
VENV="${1:-.venv}"
TAKT="$VENV/bin/takt"
EXAMPLE=examples/press-line-anomaly
WORK="${DEMO_DIR:-out/demo}"  # kept after the demo, so the report, bundles and deploy repo can be opened
rm -rf "$WORK" && mkdir -p "$WORK"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "takt validate $EXAMPLE   (specs, protocol addresses, models on disk, every model on every target)"
"$TAKT" validate "$EXAMPLE"

step "takt test $EXAMPLE   (onnxruntime: golden samples, recall with a Wilson bound, data, drift, latency, noise)"
"$TAKT" test "$EXAMPLE" --report "$WORK/report.html"
echo "HTML report: $(wc -c < "$WORK/report.html") bytes, self-contained"

step "takt matrix $EXAMPLE   (which model runs on which target)"
"$TAKT" matrix "$EXAMPLE"

step "takt model check   (one ONNX file against a target's pinned onnxruntime release)"
"$TAKT" model check "$EXAMPLE/models/press_anomaly.onnx" --target ipc-arm --spec-root "$EXAMPLE"

step "takt build   (one bundle per deployment x target; a second run renders nothing)"
"$TAKT" build "$EXAMPLE" --out "$WORK/out" --no-progress
"$TAKT" build "$EXAMPLE" --out "$WORK/out" --no-progress

step "takt keygen + takt publish to a local deploy repo   (signed desired states, one commit)"
git init -q --bare "$WORK/deploy.git"
"$TAKT" keygen --out "$WORK/keys"
"$TAKT" publish "$EXAMPLE" --deploy-repo "$WORK/deploy.git" --branch deploy --key "$WORK/keys/takt-signing.key" \
  --build-dir "$WORK/out" --create-branch
"$TAKT" publish "$EXAMPLE" --deploy-repo "$WORK/deploy.git" --branch deploy --key "$WORK/keys/takt-signing.key" \
  --build-dir "$WORK/out"
git --git-dir "$WORK/deploy.git" log --oneline deploy
git --git-dir "$WORK/deploy.git" ls-tree -r --name-only deploy | sed -n '1,3p;/devices/p'

step "takt agent run --once   (device ipc-press-1: fetch, verify signature and bundles, stage, health-check in a subprocess, switch)"
"$TAKT" agent run --repo "$WORK/deploy.git" --branch deploy --device ipc-press-1 --state-dir "$WORK/device" \
  --trust "$WORK/keys/takt-signing.pub" --once
"$TAKT" agent status --state-dir "$WORK/device"
echo "current -> $(readlink "$WORK/device/current")"

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

step "the same findings for CI: GitHub annotations and SARIF for code scanning"
"$TAKT" validate "$WORK/pr" --format github || true
"$TAKT" validate "$WORK/pr" --format sarif --output "$WORK/takt.sarif" || true
echo "SARIF written: $(wc -c < "$WORK/takt.sarif") bytes"

step "demo done: validate, test, model checks, build, publish and one agent reconcile, end to end"
cat <<EOF
Everything the demo made is kept in $WORK:
  $WORK/report.html     the test report (open it in a browser)
  $WORK/out/            the bundles and index.json that takt build wrote
  $WORK/deploy.git      the deploy repository (git --git-dir $WORK/deploy.git log deploy)
  $WORK/device/         the device's state: status.json, journal.log, current -> the active release
  $WORK/keys/           the signing key pair made for the demo
EOF
