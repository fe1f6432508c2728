#!/usr/bin/env bash
# Run the real OCI distribution conformance suite (opencontainers/distribution-spec,
# conformance/) against a private `dockyard registry serve` on 127.0.0.1.
#
# Usage: scripts/conformance.sh /path/to/distribution-spec [results-dir]
#
# Two ways to build the suite (the checkout decides):
# * offline, for the ginkgo-v1 suites (conformance/go.mod requires github.com/onsi/ginkgo, not
#   ginkgo/v2): GOPATH mode against Debian's Go 1.19 packages
#     apt-get install golang-go golang-github-onsi-ginkgo-dev golang-gomega-dev \
#         golang-github-opencontainers-go-digest-dev golang-github-google-uuid-dev
#   with scripts/conformance-reggie/reggie.go standing in for bloodorangeio/reggie (not
#   packaged by Debian; our own minimal net/http version of the calls the suite makes);
# * module mode for newer suites (ginkgo/v2, or the 1.1+ runner that needs Go >= 1.22 and
#   goccy/go-yaml): needs a Go toolchain and a module proxy, which this machine lacks.
# These apt packages are too big for CI; tests/registry/test_oci_conformance.py expresses the
# newest suite's checks in pytest and runs everywhere.
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
if grep -q 'github.com/onsi/ginkgo v1' "$spec/conformance/go.mod"; then
    gp=$work/gopath
    mkdir -p "$gp/src/github.com/bloodorangeio/reggie"
    cp "$here/scripts/conformance-reggie/reggie.go" "$gp/src/github.com/bloodorangeio/reggie/"
    cp -r "$spec/conformance" "$gp/src/conformance"
    (cd "$gp/src/conformance" && GOPATH=$gp:/usr/share/gocode GO111MODULE=off GOFLAGS= \
        GOPROXY=off go test -c -o "$work/conformance.test" .) \
        || { echo "conformance: the suite did not build (see above)" >&2; exit 3; }
else
    (cd "$spec/conformance" && go test -c -o "$work/conformance.test") \
        || { echo "conformance: the suite did not build (see above)" >&2; exit 3; }
fi

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
