#!/bin/bash
# The first thing to run: install Dockyard, start dockyardd on /run/dockyard.sock (unless one
# answers already), make a busybox base image from Debian's busybox-static with `docker import`,
# and run a container through the real docker CLI (or our `dockyard` CLI when docker is absent).
set -euo pipefail
cd "$(dirname "$0")/.."
PROJ=$(pwd)
scripts/install.sh
SOCK=/run/dockyard.sock
export DOCKER_HOST="unix://$SOCK"
if ! curl -sf --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1; then
  echo "starting dockyardd on $SOCK (log: /var/log/dockyardd.log)"
  nohup "$PROJ/.venv/bin/dockyardd" --host "unix://$SOCK" >>/var/log/dockyardd.log 2>&1 &
  echo $! >/run/dockyardd.pid
  for _ in $(seq 100); do curl -sf --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1 && break; sleep 0.1; done
  curl -sf --unix-socket "$SOCK" http://d/_ping >/dev/null || { echo "dockyardd did not start"; tail /var/log/dockyardd.log; exit 1; }
fi
if command -v docker >/dev/null; then CLI=docker; else CLI="$PROJ/.venv/bin/dockyard"; fi
if ! $CLI image inspect busybox:latest >/dev/null 2>&1 && ! $CLI inspect busybox:latest >/dev/null 2>&1; then
  echo "making busybox:latest from busybox-static"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  bb=$(command -v busybox)
  mkdir -p "$tmp/root/bin" "$tmp/root/etc" "$tmp/root/tmp" "$tmp/root/proc" "$tmp/root/sys" "$tmp/root/dev" "$tmp/root/root"
  cp "$bb" "$tmp/root/bin/busybox"
  for a in $("$bb" --list); do [ -e "$tmp/root/bin/$a" ] || ln -s busybox "$tmp/root/bin/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$tmp/root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$tmp/root/etc/group"
  chmod 1777 "$tmp/root/tmp"
  tar -C "$tmp/root" -cf "$tmp/busybox.tar" .
  $CLI import "$tmp/busybox.tar" busybox:latest >/dev/null
fi
$CLI run --rm busybox echo hello from dockyard
# and build something: a two-line Dockerfile, built by dockyardd's builder, then run
ctx=$(mktemp -d)
printf 'FROM busybox\nRUN echo "built and run by dockyard" > /greeting\nCMD ["cat", "/greeting"]\n' >"$ctx/Dockerfile"
# (the docker CLI has no buildx here: it uses the Engine API's classic /build, which we serve)
DOCKER_BUILDKIT=0 $CLI build -q -t dockyard-demo:latest "$ctx" >/dev/null 2>"$ctx.err" \
  || { cat "$ctx.err"; rm -rf "$ctx" "$ctx.err"; exit 1; }
rm -rf "$ctx" "$ctx.err"
$CLI run --rm dockyard-demo:latest
cat <<MSG

Dockyard is running on $SOCK. Try:
  export DOCKER_HOST=unix://$SOCK
  docker run --rm -it busybox sh          # an interactive shell
  docker run -d --name web busybox httpd -f -p 8080 && docker exec web ps
  docker logs -f web; docker stop web; docker rm web
  $PROJ/.venv/bin/dockyard ps -a          # our own CLI (DOCKYARD_HOST or -H pick the socket)
Stop the daemon with: kill \$(cat /run/dockyardd.pid)   (running containers keep running)
MSG
