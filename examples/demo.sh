#!/usr/bin/env bash
# `make demo`: the main job on an example, as CI would run it on a pull request.
# Today: validate (clean), the same repo with a typical mistake (located diagnostics, exit 1),
# and the machine formats CI consumes. Later stages (test, build, publish, agent) join as they land.
set -euo pipefail
VENV="${1:-.venv}"
TAKT="$VENV/bin/takt"
EXAMPLE=examples/press-line-anomaly
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "takt validate $EXAMPLE"
"$TAKT" validate "$EXAMPLE"

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

step "demo done: validate works end to end (test, build, publish and the agent come with the next issues)"
