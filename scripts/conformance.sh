#!/usr/bin/env bash
# Run the real OCI distribution conformance suite (opencontainers/distribution-spec,
# conformance/) against a private registry on 127.0.0.1: ours (`dockyard registry serve`,
# the default) or, for the side-by-side figure, CNCF Distribution (Debian's docker-registry).
#
# Usage: scripts/conformance.sh [--against dockyard|distribution] SPEC [RESULTS]
#   SPEC     a distribution-spec tree: SPEC/conformance/ (the suite) and, for the newest
#            suite, SPEC/specs-go/ (its sibling module)
#   RESULTS  where the suite writes results.yaml, junit.xml, report.html (default
#            ./conformance-results); stdout/stderr of the run go to RESULTS/suite.log too
# The suite's own settings pass through the environment (OCI_VERSION=dev, OCI_DATA_SPARSE=true,
# OCI_FILTER_TEST=..., OCI_LOG=debug); the script sets only OCI_REGISTRY, OCI_TLS=disabled and
# OCI_RESULTS_DIR (plus the legacy variables the ginkgo suites read).
#
# Three generations of the suite, told apart by the checkout:
# * newest (conformance/main.go: the `go build` runner of spec 1.1+, no ginkgo, no reggie;
#   asks for Go 1.24 and github.com/goccy/go-yaml; 1.23 does with the rewrite below). Built OFFLINE in module mode with a vendor
#   directory assembled here from Debian's gocode (no module proxy on this machine):
#     echo "deb http://deb.debian.org/debian bookworm-backports main" \
#         > /etc/apt/sources.list.d/bookworm-backports.list && apt-get update
#     apt-get install -t bookworm-backports golang-1.23-go     # Go >= 1.23 (bookworm has 1.19)
#     apt-get install golang-github-goccy-go-yaml-dev golang-github-opencontainers-go-digest-dev
#   (go-yaml pulls fatih/color, mattn/go-colorable, mattn/go-isatty, x/sys, x/xerrors). The
#   suite needs image-spec 1.1.0 (artifactType/subject); bookworm ships 1.1.0~rc2, so unless
#   the installed one is new enough the script fetches the bookworm-backports .deb with
#   `apt-get download` and unpacks it into its work dir (nothing is installed). A go.mod and
#   vendor/modules.txt are generated (module versions = the Debian versions). With Go < 1.24
#   the suite's two Go 1.24 calls are rewritten in the build copy: crypto/rand.Text() ->
#   randText(), strings.SplitSeq -> stringsSplitSeq, both defined in
#   scripts/conformance-reggie/go123compat.go (ours). GOPROXY=off GOTOOLCHAIN=local
#   GOFLAGS=-mod=vendor: nothing is downloaded.
# * ginkgo-v1 (conformance/go.mod requires github.com/onsi/ginkgo v1): GOPATH mode against
#   Debian's Go 1.19 packages
#     apt-get install golang-go golang-github-onsi-ginkgo-dev golang-gomega-dev \
#         golang-github-opencontainers-go-digest-dev golang-github-google-uuid-dev
#   with scripts/conformance-reggie/reggie.go standing in for bloodorangeio/reggie (not
#   packaged by Debian; our own minimal net/http version of the calls that suite makes);
# * ginkgo-v2 (1.1.0 release): plain `go test -c` in module mode, which needs a module proxy.
# These toolchains are too big for CI; tests/registry/test_oci_conformance.py expresses the
# newest suite's checks in pytest and runs everywhere.
#
# The registry gets a temporary root (and, for Distribution, a temporary config.yml) and an
# ephemeral port on 127.0.0.1; it is stopped by its PID and the work dir removed on exit,
# whatever happens. Distribution's binary: $DOCKER_REGISTRY_BIN, else `docker-registry` on
# PATH, else the bookworm .deb fetched with `apt-get download` and unpacked (not installed,
# so no service is started).
set -euo pipefail

against=dockyard
if [ "${1:-}" = "--against" ]; then
    against=${2:?--against needs dockyard or distribution}; shift 2
fi
case $against in dockyard|distribution) ;; *) echo "conformance: unknown target $against" >&2; exit 2;; esac
spec=${1:?usage: $0 [--against dockyard|distribution] SPEC [RESULTS]}
results=${2:-$PWD/conformance-results}
here=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-$here/.venv/bin/python}
[ -d "$spec/conformance" ] || { echo "conformance: $spec/conformance not found" >&2; exit 2; }
spec=$(cd "$spec" && pwd)
mkdir -p "$results"
results=$(cd "$results" && pwd)

work=$(mktemp -d)
reg_pid=""
cleanup() {
    if [ -n "$reg_pid" ] && kill -0 "$reg_pid" 2>/dev/null; then
        kill "$reg_pid"; wait "$reg_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# newest Go on this machine (Debian installs each version under /usr/lib/go-1.NN)
pick_go() {
    local best="" v
    for g in /usr/lib/go-1.*/bin/go "$(command -v go || true)"; do
        [ -x "$g" ] || continue
        v=$("$g" env GOVERSION 2>/dev/null | sed -n 's/^go1\.\([0-9]*\).*/\1/p')
        [ -n "$v" ] || continue
        if [ -z "$best" ] || [ "$v" -gt "${best%% *}" ]; then best="$v $g"; fi
    done
    echo "$best"
}

# unpack a Debian package's files into $work/debs/<name> without installing it
deb_unpack() {
    local pkg=$1 dest=$work/debs/$2
    mkdir -p "$work/debs" "$dest"
    (cd "$work/debs" && apt-get download "$pkg" >/dev/null 2>&1) \
        || { echo "conformance: apt-get download $pkg failed" >&2; return 1; }
    dpkg-deb -x "$(ls -t "$work"/debs/*.deb | head -1)" "$dest"
}

# vendor/ + go.mod for the newest suite, from Debian's gocode (see the header)
vendor_newest() {
    local mod=$1 golang=$2 gc=/usr/share/gocode/src isd=/usr/share/gocode/src
    if ! grep -q 'ArtifactType' "$isd/github.com/opencontainers/image-spec/specs-go/v1/manifest.go" 2>/dev/null; then
        deb_unpack golang-github-opencontainers-image-spec-dev/bookworm-backports image-spec
        isd=$work/debs/image-spec/usr/share/gocode/src
    fi
    [ -d "$spec/specs-go" ] || { echo "conformance: $spec/specs-go not found (the suite imports it)" >&2; return 1; }
    local mods=(
        "github.com/goccy/go-yaml $gc/github.com/goccy/go-yaml golang-github-goccy-go-yaml-dev"
        "github.com/fatih/color $gc/github.com/fatih/color golang-github-fatih-color-dev"
        "github.com/mattn/go-colorable $gc/github.com/mattn/go-colorable golang-github-mattn-go-colorable-dev"
        "github.com/mattn/go-isatty $gc/github.com/mattn/go-isatty golang-github-mattn-go-isatty-dev"
        "golang.org/x/sys $gc/golang.org/x/sys golang-golang-x-sys-dev"
        "golang.org/x/xerrors $gc/golang.org/x/xerrors golang-golang-x-xerrors-dev"
        "github.com/opencontainers/go-digest $gc/github.com/opencontainers/go-digest golang-github-opencontainers-go-digest-dev"
        "github.com/opencontainers/image-spec $isd/github.com/opencontainers/image-spec golang-github-opencontainers-image-spec-dev"
        "github.com/opencontainers/distribution-spec/specs-go $spec/specs-go -"
    )
    local m path src pkg ver gov
    rm -rf "$mod/vendor" "$mod/go.sum"; mkdir -p "$mod/vendor"
    printf 'module github.com/opencontainers/distribution-spec/conformance\n\ngo %s\n\nrequire (\n' "$golang" >"$mod/go.mod"
    : >"$mod/vendor/modules.txt"
    for m in "${mods[@]}"; do
        read -r path src pkg <<<"$m"
        [ -d "$src" ] || { echo "conformance: $src missing (apt-get install $pkg)" >&2; return 1; }
        # a module version from the Debian package version (1.9.5-2 -> v1.9.5), any valid one will do
        ver=v0.0.0-00010101000000-000000000000
        if [ "$pkg" != - ]; then
            local dv
            dv=$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null || true)
            dv=${dv#*:}; dv=${dv%%[-+~]*}
            [[ $dv =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] && ver=v$dv
        fi
        [ "$path" = github.com/opencontainers/image-spec ] && ver=v1.1.0
        printf '\t%s %s\n' "$path" "$ver" >>"$mod/go.mod"
        mkdir -p "$mod/vendor/$path"
        (cd "$src" && find . \( -name '*.go' -o -name '*.s' -o -name '*.h' \) ! -name '*_test.go' \
            ! -path '*/testdata/*' ! -path './cmd/*' ! -path './benchmarks/*' ! -path '*/_*' -print0 \
            | tar --null -T - -cf -) | tar -C "$mod/vendor/$path" -xf -
        # vendored modules compile at their own go.mod's language version (1.16 otherwise)
        gov=$(awk '$1=="go" {print $2; exit}' "$src/go.mod" 2>/dev/null || true)
        printf '# %s %s\n## explicit; go %s\n' "$path" "$ver" "${gov:-1.17}" >>"$mod/vendor/modules.txt"
        (cd "$mod/vendor/$path" && find . -name '*.go' -printf '%h\n' | sort -u | sed "s|^\.|$path|") \
            >>"$mod/vendor/modules.txt"
    done
    printf ')\n' >>"$mod/go.mod"
}

suite_version=${CONFORMANCE_VERSION:-$(git -C "$spec" rev-parse HEAD 2>/dev/null || cat "$spec/SOURCE-COMMIT" 2>/dev/null || echo unknown)}
if [ -f "$spec/conformance/main.go" ]; then
    read -r gominor gobin <<<"$(pick_go)"
    [ -n "${gominor:-}" ] && [ "$gominor" -ge 23 ] \
        || { echo "conformance: the newest suite needs Go >= 1.23 (apt-get install -t bookworm-backports golang-1.23-go)" >&2; exit 2; }
    build=$work/suite
    cp -r "$spec/conformance" "$build"
    rm -f "$build"/*_test.go   # the deprecated `go test` entry point (legacy_test.go)
    vendor_newest "$build" "1.$gominor"
    if [ "$gominor" -lt 24 ]; then
        sed '/^\/\/go:build ignore$/d' "$here/scripts/conformance-reggie/go123compat.go" >"$build/zz_go123compat.go"
        sed -i 's/\brand\.Text()/randText()/g; s/\bstrings\.SplitSeq(/stringsSplitSeq(/g' "$build"/*.go
    fi
    echo "conformance: building the newest suite ($suite_version) with $("$gobin" version)"
    (cd "$build" && GOTOOLCHAIN=local GOPROXY=off GOFLAGS=-mod=vendor GOCACHE=$work/gocache \
        "$gobin" build -ldflags "-X main.Version=$suite_version" -o "$work/conformance.bin" .) \
        || { echo "conformance: the suite did not build (see above)" >&2; exit 3; }
    suite=("$work/conformance.bin")
elif grep -q 'github.com/onsi/ginkgo v1' "$spec/conformance/go.mod"; then
    command -v go >/dev/null || { echo "conformance: no 'go' on PATH" >&2; exit 2; }
    gp=$work/gopath
    mkdir -p "$gp/src/github.com/bloodorangeio/reggie"
    cp "$here/scripts/conformance-reggie/reggie.go" "$gp/src/github.com/bloodorangeio/reggie/"
    cp -r "$spec/conformance" "$gp/src/conformance"
    echo "conformance: building the ginkgo-v1 suite with $(go version)"
    (cd "$gp/src/conformance" && GOPATH=$gp:/usr/share/gocode GO111MODULE=off GOFLAGS= \
        GOPROXY=off go test -c -o "$work/conformance.test" .) \
        || { echo "conformance: the suite did not build (see above)" >&2; exit 3; }
    suite=("$work/conformance.test")
else
    command -v go >/dev/null || { echo "conformance: no 'go' on PATH" >&2; exit 2; }
    (cd "$spec/conformance" && go test -c -o "$work/conformance.test") \
        || { echo "conformance: the suite did not build (see above)" >&2; exit 3; }
    suite=("$work/conformance.test")
fi

if [ "$against" = dockyard ]; then
    "$py" -m dockyard.registry serve --addr 127.0.0.1:0 --root "$work/root" \
        >"$work/addr" 2>"$work/registry.log" &
    reg_pid=$!
    for _ in $(seq 100); do
        grep -q "listening on" "$work/addr" 2>/dev/null && break
        kill -0 "$reg_pid" 2>/dev/null || break
        sleep 0.1
    done
    url=$(awk '/listening on/ {print $NF}' "$work/addr")
else
    regbin=${DOCKER_REGISTRY_BIN:-$(command -v docker-registry || true)}
    if [ -z "$regbin" ]; then
        deb_unpack docker-registry distribution
        regbin=$work/debs/distribution/usr/bin/docker-registry
    fi
    port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    cat >"$work/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $work/root
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
EOF
    echo "conformance: $("$regbin" --version)"
    "$regbin" serve "$work/config.yml" >"$work/registry.log" 2>&1 &
    reg_pid=$!
    url=""
    for _ in $(seq 100); do
        if "$py" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
            "http://127.0.0.1:$port/v2/" 2>/dev/null; then url=http://127.0.0.1:$port; break; fi
        kill -0 "$reg_pid" 2>/dev/null || break
        sleep 0.1
    done
fi
[ -n "$url" ] || { cat "$work/registry.log" >&2; echo "conformance: registry did not start" >&2; exit 3; }
echo "conformance: $against registry at $url"

# The newest suite reads OCI_REGISTRY/OCI_TLS/OCI_REPO*; the ginkgo ones the legacy names.
export OCI_REGISTRY=${url#http://} OCI_TLS=disabled OCI_RESULTS_DIR=$results
export OCI_REPO1=${OCI_REPO1:-conformance/repo1} OCI_REPO2=${OCI_REPO2:-conformance/repo2}
if [ "${suite[0]}" != "$work/conformance.bin" ]; then
    export OCI_ROOT_URL=$url OCI_NAMESPACE=$OCI_REPO1 OCI_CROSSMOUNT_NAMESPACE=$OCI_REPO2
    export OCI_TEST_PULL=1 OCI_TEST_PUSH=1 OCI_TEST_CONTENT_DISCOVERY=1 OCI_TEST_CONTENT_MANAGEMENT=1
    export OCI_HIDE_SKIPPED_WORKFLOWS=0 OCI_DEBUG=0 OCI_DELETE_MANIFEST_BEFORE_BLOBS=1
fi
status=0
(cd "$results" && "${suite[@]}") >"$results/suite.log" 2>&1 || status=$?
sed -n '/^OCI Conformance Result/,/^  Total/p' "$results/suite.log"
grep -E '^(Ran |FAIL!|PASS!|SUCCESS!)' "$results/suite.log" || true
echo "conformance: suite exited $status against $against; full log $results/suite.log, reports in $results"
exit $status
