#!/usr/bin/env bash
# docker-py's own integration test suite (tests/integration) run against a private dockyardd.
#
# What it does, all under one work folder ($DOCKERPY_WORK, default /var/tmp/dockyard-dockerpy.<pid>):
#
#   work/
#   ├── venv/            docker (the SDK under test, $DOCKERPY_VERSION) + pytest 7 + paramiko
#   ├── sdist/           pip download of docker==$DOCKERPY_VERSION (and of the newest sdist that
#   │                    still ships tests/ when that one does not: 7.x sdists dropped them)
#   ├── suite/tests/     the test tree that runs ($DOCKERPY_TESTS overrides: a folder holding tests/)
#   ├── reg/             `dockyard registry serve` storage, on 127.0.0.1:<free port>
#   ├── bb/, bb.tar      a busybox-static root filesystem (tests/conftest.py's make_busybox_rootfs)
#   ├── d.sock data/ exec/   the private dockyardd (--registry-mirror http://127.0.0.1:<port>)
#   └── junit.xml, pytest.log, daemon.log, registry.log
#
# Docker Hub is unreachable, so the images the suite pulls (alpine:3.10, alpine:latest,
# busybox:latest, hello-world:latest) are the busybox rootfs pushed to the local registry as
# library/<name>; the daemon pulls them through its mirror as it would from Docker Hub.
# Swarm-only files (swarm, services, secrets, configs, nodes) and plugins are not run; the three
# swarm tests inside api_network_test.py are deselected. Prints passed/failed/skipped counts and
# the failing test ids. Cleans up by PID and path whatever happens (KEEP=1 keeps the folder).
#
# Usage: scripts/dockerpy-suite.sh [extra pytest args, e.g. -k test_pull or a test file]
set -euo pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
PY=$HERE/.venv/bin/python
VERSION=${DOCKERPY_VERSION:-7.1.0}
TESTS_FALLBACK_VERSION=${DOCKERPY_TESTS_VERSION:-6.1.3}
WORK=${DOCKERPY_WORK:-/var/tmp/dockyard-dockerpy.$$}
REG_PID="" DAEMON_PID=""

cleanup() {
    set +e
    if [[ -n $DAEMON_PID ]] && kill -0 "$DAEMON_PID" 2>/dev/null; then
        export DOCKER_HOST=unix://$WORK/d.sock
        ids=$(docker ps -aq 2>/dev/null)
        [[ -n $ids ]] && docker rm -f $ids >/dev/null 2>&1
        docker network prune -f >/dev/null 2>&1
        docker volume prune -af >/dev/null 2>&1
        kill -TERM "$DAEMON_PID"
        for _ in $(seq 100); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.2; done
        kill -0 "$DAEMON_PID" 2>/dev/null && kill -KILL "$DAEMON_PID"
    fi
    # The monitor outlives daemons by design; this run's monitor must not outlive the run.
    if [[ -S $WORK/exec/monitor.sock ]]; then
        "$PY" - "$WORK/exec/monitor.sock" <<'EOF'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1]); s.sendall(json.dumps({"op": "shutdown", "if_idle": False}).encode() + b"\n"); s.recv(100)
except OSError:
    pass
EOF
    fi
    if [[ -n $REG_PID ]] && kill -0 "$REG_PID" 2>/dev/null; then
        kill -TERM "$REG_PID"; wait "$REG_PID" 2>/dev/null
    fi
    awk -v w=" $WORK" 'index($0, w) {print $2}' /proc/mounts | sort -r | while read -r m; do umount -l "$m"; done
    if [[ ${KEEP:-0} != 1 ]]; then rm -rf "$WORK"; else echo "kept $WORK"; fi
}
trap cleanup EXIT
mkdir -p "$WORK"/{sdist,suite}

echo "== venv with docker==$VERSION"
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" -q install "docker==$VERSION" "pytest<8" paramiko websocket-client

echo "== test tree"
if [[ -n ${DOCKERPY_TESTS:-} ]]; then
    cp -r "$DOCKERPY_TESTS/tests" "$WORK/suite/"
else
    "$WORK/venv/bin/pip" -q download "docker==$VERSION" --no-binary :all: --no-deps -d "$WORK/sdist"
    if tar tzf "$WORK/sdist/docker-$VERSION.tar.gz" | grep -q "^docker-$VERSION/tests/integration/"; then
        TV=$VERSION
    else
        TV=$TESTS_FALLBACK_VERSION
        echo "   docker-$VERSION's sdist has no tests/: using the tests of docker-$TV's sdist"
        "$WORK/venv/bin/pip" -q download "docker==$TV" --no-binary :all: --no-deps -d "$WORK/sdist"
    fi
    tar xzf "$WORK/sdist/docker-$TV.tar.gz" -C "$WORK/sdist" "docker-$TV/tests"
    # tests/ only: the sdist's docker/ package must not shadow the SDK under test.
    cp -r "$WORK/sdist/docker-$TV/tests" "$WORK/suite/"
fi
printf '[pytest]\naddopts = --tb=short -rfEs\n' > "$WORK/suite/pytest.ini"

echo "== registry"
"$PY" -m dockyard.registry serve --addr 127.0.0.1:0 --root "$WORK/reg" >"$WORK/registry.out" 2>"$WORK/registry.log" &
REG_PID=$!
for _ in $(seq 100); do grep -q "listening on" "$WORK/registry.out" 2>/dev/null && break; sleep 0.1; done
REG=$(sed -n 's|.*listening on http://||p' "$WORK/registry.out" | head -1)
[[ -n $REG ]] || { echo "registry did not start"; cat "$WORK/registry.log"; exit 1; }
echo "   http://$REG"

if [[ ${DOCKERPY_DAEMON:-dockyardd} == dockerd ]]; then
    # The reference: a private dockerd (Debian's 20.10, API 1.41) on its own socket and roots.
    echo "== dockerd (reference)"
    dockerd -H "unix://$WORK/d.sock" --data-root "$WORK/data" --exec-root "$WORK/exec" --pidfile "$WORK/dockerd.pid" \
        --bridge none --iptables=false --containerd-namespace dockerpy --containerd-plugins-namespace dockerpyp \
        --registry-mirror "http://$REG" >"$WORK/daemon.log" 2>&1 &
else
    echo "== dockyardd"
    "$HERE/.venv/bin/dockyardd" --host "unix://$WORK/d.sock" --data-root "$WORK/data" --exec-root "$WORK/exec" \
        --registry-mirror "http://$REG" >"$WORK/daemon.log" 2>&1 &
fi
DAEMON_PID=$!
export DOCKER_HOST=unix://$WORK/d.sock
for _ in $(seq 200); do docker version >/dev/null 2>&1 && break; sleep 0.1; done
docker version --format '   server {{.Server.Version}} (API {{.Server.APIVersion}})'

echo "== images in the mirror"
PYTHONPATH=$HERE/tests "$PY" -c "import sys; from conftest import make_busybox_rootfs; from pathlib import Path; make_busybox_rootfs(Path(sys.argv[1]))" "$WORK/bb"
# Two things of alpine's userland that tests rely on: its postgres user and /var/opt.
echo 'postgres:x:70:70::/var/lib/postgresql:/bin/sh' >> "$WORK/bb/etc/passwd"
echo 'postgres:x:70:' >> "$WORK/bb/etc/group"
mkdir -p "$WORK/bb/var/opt"
tar -C "$WORK/bb" -cf "$WORK/bb.tar" .
PATHENV='ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
for img in alpine:3.10 alpine:latest busybox:latest hello-world:latest; do
    cmd='CMD ["/bin/sh"]'
    [[ $img == hello-world:* ]] && cmd='CMD ["/bin/echo", "Hello from Docker!"]'
    docker import -c "$PATHENV" -c "$cmd" "$WORK/bb.tar" "$REG/library/$img" >/dev/null
    docker push -q "$REG/library/$img" >/dev/null
    docker rmi "$REG/library/$img" >/dev/null
done

echo "== pytest"
cd "$WORK/suite"
SKIP_FILES=(api_swarm_test.py api_service_test.py api_secret_test.py api_config_test.py api_plugin_test.py
            models_swarm_test.py models_services_test.py models_nodes_test.py)
FILES=()
for f in tests/integration/api_*_test.py tests/integration/models_*_test.py; do
    [[ " ${SKIP_FILES[*]} " == *" $(basename "$f") "* ]] || FILES+=("$f")
done
DESELECT=(--deselect tests/integration/api_network_test.py::TestNetworks::test_create_network_attachable
          --deselect tests/integration/api_network_test.py::TestNetworks::test_create_network_ingress
          --deselect tests/integration/api_network_test.py::TestNetworks::test_create_inspect_network_with_scope)
skipped_swarm=$("$WORK/venv/bin/python" -m pytest -q --collect-only -p no:cacheprovider \
    $(printf 'tests/integration/%s ' "${SKIP_FILES[@]}") 2>/dev/null | grep -c '::' || true)
set +e
"$WORK/venv/bin/python" -m pytest -p no:cacheprovider --durations=5 --junitxml="$WORK/junit.xml" -o junit_family=xunit2 \
    "${DESELECT[@]}" "${FILES[@]}" "$@" 2>&1 | tee "$WORK/pytest.log" | grep -E '^(FAILED|ERROR)|passed|failed'
set -e

echo "== counts"
"$PY" - "$WORK/junit.xml" "$skipped_swarm" <<'EOF'
import sys
import xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else list(root)
n = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
passed = n["tests"] - n["failures"] - n["errors"] - n["skipped"]
print(f"passed {passed}  failed {n['failures']}  errors {n['errors']}  skipped {n['skipped']}"
      f"  (not run, swarm/plugin-only: {sys.argv[2]} tests in 8 files + 3 deselected)")
EOF
