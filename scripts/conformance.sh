#!/usr/bin/env bash
# Run the real OCI distribution conformance suite (opencontainers/distribution-spec,
# conformance/) against a private `dockyard registry serve` on 127.0.0.1.
#
# Usage: scripts/conformance.sh /path/to/distribution-spec [results-dir]
#
# Needs what this machine cannot give offline (so it is not part of CI): a checkout of
# distribution-spec and a Go toolchain that builds its conformance/ directory. The current
# suite (1.1, the non-ginkgo runner) needs Go >= 1.22 (log/slog, range over int) and
# goccy/go-yaml; the ginkgo-based 1.0/1.1.0 suites need ginkgo/v2 and bloodorangeio/reggie.
# Debian 12 ships Go 1.19 and ginkgo v1 only, and no Go module proxy is reachable here,
# so the build fails offline; tests/registry/test_oci_conformance.py expresses the same
# checks in pytest and runs everywhere.
#
# The registry gets a temporary root and an ephemeral port; it is stopped (by its PID) and
# its root removed on exit, whatever happens.
set -euo pipefail

spec=${1:?usage: $0 /path/to/distribution-spec [results-dir]}
results=${2:-$PWD/conformance-results}
here=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-$here/.venv/bin/python}

command -v go >/dev/null || { echo "conformance: no 'go' on PATH" >&2; exit 2; }
[ -d "$spec/conformance" ] || { echo "conformance: $spec/conformance not found" >&2; exit 2; }

work=$(mktemp -d)
reg_pid=""
cleanup() {
    if [ -n "$reg_pid" ] && kill -0 "$reg_pid" 2>/dev/null; then
        kill "$reg_pid"; wait "$reg_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

echo "conformance: building the suite with $(go version)"
(cd "$spec/conformance" && go test -c -o "$work/conformance.test") \
    || { echo "conformance: the suite did not build (see above)" >&2; exit 3; }

"$py" -m dockyard.registry serve --addr 127.0.0.1:0 --root "$work/root" \
    >"$work/addr" 2>"$work/registry.log" &
reg_pid=$!
for _ in $(seq 100); do
    grep -q "listening on" "$work/addr" 2>/dev/null && break
    sleep 0.1
done
url=$(awk '/listening on/ {print $NF}' "$work/addr")
[ -n "$url" ] || { cat "$work/registry.log" >&2; echo "conformance: registry did not start" >&2; exit 3; }
echo "conformance: registry at $url"

mkdir -p "$results"
# Both the legacy variables (ginkgo suites) and the new OCI_* ones (1.1+ runner).
export OCI_ROOT_URL=$url OCI_NAMESPACE=conformance/repo1 OCI_CROSSMOUNT_NAMESPACE=conformance/repo2
export OCI_TEST_PULL=1 OCI_TEST_PUSH=1 OCI_TEST_CONTENT_DISCOVERY=1 OCI_TEST_CONTENT_MANAGEMENT=1
export OCI_HIDE_SKIPPED_WORKFLOWS=0 OCI_DEBUG=0 OCI_DELETE_MANIFEST_BEFORE_BLOBS=1
export OCI_REGISTRY=${url#http://} OCI_TLS=disabled OCI_RESULTS_DIR=$results
status=0
(cd "$results" && "$work/conformance.test") || status=$?
echo "conformance: suite exited $status; reports in $results"
exit $status
