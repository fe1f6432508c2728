"""Dockyard against a private dockerd (Debian docker.io), side by side in one run.

Both engines get a busybox image imported from busybox-static and `--network none`
containers (the private dockerd runs with `--bridge none`, as in engine_run.py). Measured:

- idle RSS: dockyardd + its monitor, against dockerd + containerd, right after start-up
  (bytecode compiled first, as an installed package has it: with PYTHONDONTWRITEBYTECODE the
  daemon would compile every module at each start and keep the compiler's garbage resident);
- RSS after a session's workload on ours: `docker run --rm` on the default bridge (network
  code, nft rules), `docker build` (the builder), `docker push` + `pull` through a local
  `dockyard registry` (the registry client, TLS): what every real session pays, measured so
  that deferring imports is not mistaken for saving memory (and again at the very end);
- exec: `docker exec C true` into a running container (median of N, alternating engines);
- run: `dockyard run --rm busybox true` (our CLI) and `docker run --rm busybox true` against
  both engines;
- create+start+rm of 100 containers through the Engine API (http.client over the unix
  socket: the engine's time, not the CLI's start-up), total wall time;
- `docker ps -a` with 1,000 created containers (median of N);
- RSS added per running container: every process of the engine (daemon, monitor / containerd,
  shims), container processes excluded, before and after K `sleep` containers.

    .venv/bin/python benchmarks/engine_compare.py [-n 10] [--ps 1000] [--batch 100] [-k 10]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

import engine_run  # noqa: E402 - busybox import and the reference dockerd live there

import daemon_procs  # noqa: E402 - tests/daemon_procs.py: the one private-dockyardd start/stop
import registry_procs  # noqa: E402 - tests/registry_procs.py: the one `dockyard registry serve` start/stop

BIN = Path(sys.executable).parent


class Api(http.client.HTTPConnection):
    def __init__(self, sock: str) -> None:
        super().__init__("localhost", timeout=120)
        self.path = sock

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX)
        s.connect(self.path)
        self.sock = s

    def call(self, method: str, url: str, body: dict | None = None) -> tuple[int, bytes]:
        data = json.dumps(body).encode() if body is not None else None
        self.request(method, url, body=data, headers={"Content-Type": "application/json"} if data else {})
        r = self.getresponse()
        return r.status, r.read()


def engine_pids(marker: str) -> list[int]:
    """Processes whose command line names this engine's private paths (daemon, monitor,
    containerd, shims); the containers' own processes never do."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            cmd = Path(f"/proc/{d}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmd and "engine_compare" not in cmd:
            pids.append(int(d))
    return pids


def rss_kb(pids: list[int]) -> int:
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def ms(f: Callable[[], object]) -> float:
    t = time.perf_counter()
    f()
    return (time.perf_counter() - t) * 1000


def cli(env: dict[str, str], *args: str, prog: str = "docker") -> None:
    cp = subprocess.run([prog, *args], env=env, capture_output=True)
    if cp.returncode != 0:
        raise RuntimeError(f"{prog} {' '.join(args)}: {cp.stderr.decode()[-300:]}")


def create_start_rm(sock: str, n: int) -> float:
    api = Api(sock)
    body = {"Image": "busybox", "Cmd": ["true"], "HostConfig": {"NetworkMode": "none"}}
    t = time.perf_counter()
    for _ in range(n):
        st, out = api.call("POST", "/v1.41/containers/create", body)
        assert st == 201, out
        cid = json.loads(out)["Id"]
        st, out = api.call("POST", f"/v1.41/containers/{cid}/start")
        assert st == 204, out
        st, out = api.call("DELETE", f"/v1.41/containers/{cid}?force=1")
        assert st == 204, out
    dt = time.perf_counter() - t
    api.close()
    return dt * 1000


def create_many(sock: str, n: int, label: str) -> None:
    api = Api(sock)
    body = {"Image": "busybox", "Cmd": ["true"], "Labels": {label: "1"}, "HostConfig": {"NetworkMode": "none"}}
    for _ in range(n):
        st, out = api.call("POST", "/v1.41/containers/create", body)
        assert st == 201, out
    api.close()


def session_workload(tmp: Path, env: dict[str, str]) -> None:
    """run --rm on the default bridge, a build, a push and a pull through a loopback registry."""
    cli(env, "run", "--rm", "busybox", "true")
    ctx = tmp / "buildctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo built > /built\nCOPY Dockerfile /\n")
    cli(env, "build", "-q", "-t", "bench-built:1", str(ctx))
    reg, first = registry_procs.spawn(tmp / "registry", tmp / "registry.log")
    try:
        ref = f"{first.rsplit('/', 1)[1]}/bench/built:1"
        cli(env, "tag", "bench-built:1", ref)
        cli(env, "push", ref)
        cli(env, "rmi", ref, "bench-built:1")
        cli(env, "pull", ref)
        cli(env, "rmi", ref)
    finally:
        registry_procs.stop([reg])


def line(what: str, ours: float, ref: float | None, unit: str = "ms") -> None:
    if ref:
        print(f"{what:44s} dockyard {ours:9.1f} {unit}   dockerd {ref:9.1f} {unit}   ratio {ours / ref:5.2f}")
    else:
        print(f"{what:44s} dockyard {ours:9.1f} {unit}   dockerd n/a")


def main() -> None:  # noqa: PLR0915 - one linear script
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=10)
    ap.add_argument("--ps", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("-k", type=int, default=10)
    args = ap.parse_args()
    import dockyard
    from conftest import make_busybox_rootfs
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(dockyard.__file__).parent)],
                   check=True, stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONDONTWRITEBYTECODE": ""})
    tmp = Path(tempfile.mkdtemp(prefix="dyc-", dir="/tmp"))
    sock = str(tmp / "d.sock")
    daemon = daemon_procs.spawn(tmp)
    env = daemon_procs.docker_env(tmp)
    ours_marker = f"{tmp}/"
    ref_marker = f"{tmp}/ref"
    try:
        make_busybox_rootfs(tmp / "bb")
        subprocess.run(["tar", "-C", str(tmp / "bb"), "-cf", str(tmp / "bb.tar"), "."], check=True)
        time.sleep(2)  # let start-up settle
        ours_pids = [p for p in engine_pids(ours_marker) if p not in engine_pids(ref_marker)]
        idle_ours = rss_kb(ours_pids)
        idle_daemon = rss_kb([daemon.pid])
        ref_env, have_ref = engine_run.start_reference(tmp, env)
        ref_sock = ref_env["DOCKER_HOST"].removeprefix("unix://")
        time.sleep(2)
        idle_ref = rss_kb(engine_pids(ref_marker)) if have_ref else 0
        print(f"idle RSS: dockyardd {idle_daemon / 1024:.1f} MB, monitor {(idle_ours - idle_daemon) / 1024:.1f} MB "
              f"({len(ours_pids)} processes)")
        line("idle RSS (daemon + monitor | dockerd + containerd)", idle_ours / 1024, idle_ref / 1024, "MB")
        line("idle RSS (dockyardd alone | dockerd + containerd)", idle_daemon / 1024, idle_ref / 1024, "MB")
        cli(env, "import", str(tmp / "bb.tar"), "busybox:latest")
        try:
            session_workload(tmp, env)
            time.sleep(3)  # quiet for 2 s, the daemon gives freed heap back (HeapTrimmer)
            after = [p for p in engine_pids(ours_marker) if p not in engine_pids(ref_marker)]
            after_daemon = rss_kb([daemon.pid])
            print(f"after run --rm (bridge), build, push, pull: dockyardd {after_daemon / 1024:.1f} MB, "
                  f"monitor {(rss_kb(after) - after_daemon) / 1024:.1f} MB")
            line("RSS after that workload (ours | dockerd idle)", rss_kb(after) / 1024, idle_ref / 1024, "MB")
        except RuntimeError as ex:
            print(f"session workload: failed: {ex}")

        engines = [("ours", env, sock)] + ([("ref", ref_env, ref_sock)] if have_ref else [])

        def compare(what: str, f: Callable[[str, dict[str, str], str], float], n: int) -> None:
            got: dict[str, list[float]] = {"ours": [], "ref": []}
            for _ in range(n):
                for name, e, s in engines:
                    got[name].append(f(name, e, s))
            line(what, statistics.median(got["ours"]), statistics.median(got["ref"]) if got["ref"] else None)

        for _name, e, _ in engines:
            cli(e, "run", "-d", "--name", "bench-exec", "--network", "none", "busybox", "sleep", "100000")
            for _ in range(2):
                cli(e, "exec", "bench-exec", "true")
        compare("docker exec C true (median)", lambda n_, e, s: ms(lambda: cli(e, "exec", "bench-exec", "true")),
                args.n)
        for _name, e, _ in engines:
            cli(e, "rm", "-f", "bench-exec")

        compare("docker run --rm busybox true (median)",
                lambda n_, e, s: ms(lambda: cli(e, "run", "--rm", "--network", "none", "busybox", "true")), args.n)
        try:
            ours_cli = [ms(lambda: cli(env, "run", "--rm", "--network", "none", "busybox", "true",
                                       prog=str(BIN / "dockyard"))) for _ in range(args.n + 2)][2:]
            ref_docker = []
            if have_ref:
                ref_docker = [ms(lambda: cli(ref_env, "run", "--rm", "--network", "none", "busybox", "true"))
                              for _ in range(args.n)]
            line("dockyard run --rm | docker run --rm (dockerd)", statistics.median(ours_cli),
                 statistics.median(ref_docker) if ref_docker else None)
        except RuntimeError as ex:
            print(f"dockyard run --rm: failed: {ex}")

        compare(f"create+start+rm x{args.batch} via the API (total)",
                lambda n_, e, s: create_start_rm(s, args.batch), 1)

        for _name, _e, s in engines:
            create_many(s, args.ps, "bench-ps")
        compare(f"docker ps -a with {args.ps} containers (median)",
                lambda n_, e, s: ms(lambda: cli(e, "ps", "-a", "-q")), args.n)
        for _name, e, _s in engines:
            ids = subprocess.run(["docker", "ps", "-aq", "--filter", "label=bench-ps"], env=e,
                                 capture_output=True, text=True).stdout.split()
            for i in range(0, len(ids), 200):
                subprocess.run(["docker", "rm", "-f", *ids[i:i + 200]], env=e, capture_output=True)

        def per_container(e: dict[str, str], marker: str, exclude: str | None) -> float:
            def pids() -> list[int]:
                ps = engine_pids(marker)
                return [p for p in ps if p not in engine_pids(exclude)] if exclude else ps
            before = rss_kb(pids())
            for i in range(args.k):
                cli(e, "run", "-d", "--name", f"bench-rss{i}", "--network", "none", "busybox", "sleep", "100000")
            time.sleep(1)
            after = rss_kb(pids())
            cli(e, "rm", "-f", *[f"bench-rss{i}" for i in range(args.k)])
            return (after - before) / args.k
        ours_pc = per_container(env, ours_marker, ref_marker)
        ref_pc = per_container(ref_env, ref_marker, None) if have_ref else 0
        line(f"RSS added per running container (k={args.k})", ours_pc, ref_pc, "kB")
        time.sleep(3)
        ours_pids = [p for p in engine_pids(ours_marker) if p not in engine_pids(ref_marker)]
        line("RSS after the workload (same processes)", rss_kb(ours_pids) / 1024,
             rss_kb(engine_pids(ref_marker)) / 1024 if have_ref else None, "MB")
    finally:
        engine_run.stop_reference(tmp)
        daemon_procs.stop(tmp, daemon)


if __name__ == "__main__":
    main()
