"""``dockyardd``: serve the Docker Engine API on a unix socket.

Start-up: parse flags -> open the image store -> reach (or start) the monitor -> load and
reconcile container records -> listen. SIGTERM/SIGINT: stop listening, tell the monitor to exit
if it supervises nothing (running containers keep running: live restore is the default).

Layout::

    <data-root>/
      image/                       the image store (dockyard.images)
      containers/<id>/             container records, /etc files, json-file logs
      engine-id                    this daemon's ID (docker info)
    <exec-root>/
      monitor.sock  monitor/       the monitor and its exit records
      runtime/                     the OCI runtime's --root
      bundles/<id>/                config.json, rootfs mount point
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import secrets
import signal
import sys
from dataclasses import dataclass
from typing import Any

from dockyard import errors
from dockyard.atomicfile import write_atomic
from dockyard.daemon.config import DaemonConfig, parse_args
from dockyard.daemon.containers import ContainerService
from dockyard.daemon.events import EventBus
from dockyard.daemon.monitor_client import MonitorClient
from dockyard.daemon.networking import Networking, open_manager
from dockyard.daemon.state import COMMIT_PAUSE_MARKER, Status


def _import_web() -> Any:
    """aiohttp.web, with frozenlist (aiohttp's signal lists) as pure Python: its C++ extension
    maps libstdc++ (~1 MB resident for good) to speed up a list wrapper that aiohttp reads a
    few times per request. Only for this import: children do not inherit the setting."""
    key = "FROZENLIST_NO_EXTENSIONS"
    ours = key not in os.environ and "frozenlist" not in sys.modules
    if ours:
        os.environ[key] = "1"
    try:
        from aiohttp import web as module
    finally:
        if ours:
            del os.environ[key]
    return module


web = _import_web()  # after the imports above, none of which imports aiohttp


@dataclass
class Services:
    cfg: DaemonConfig
    images: Any
    containers: ContainerService
    events: EventBus
    daemon_id: str
    pull: Any = None  # POST /images/create?fromImage= (set by the distribution router)
    networks: Any = None  # dockyard.network.manager.NetworkManager (api/networks.py)
    volumes: Any = None  # dockyard.volumes.service.VolumeService (api/volumes.py)


def _open_volumes(cfg: DaemonConfig, in_use: Any) -> Any:
    try:
        from dockyard.volumes.service import VolumeService
        return VolumeService(cfg.data_root / "volumes", in_use=in_use)
    except Exception:  # noqa: BLE001 - the daemon runs without volumes rather than not at all
        logging.getLogger("dockyard").exception("volumes are unavailable")
        return None


def _daemon_id(cfg: DaemonConfig) -> str:
    p = cfg.data_root / "engine-id"
    try:
        return p.read_text().strip()
    except FileNotFoundError:
        ident = secrets.token_hex(16)
        write_atomic(p, ident.encode())
        return ident


def _usable_runtime(cfg: DaemonConfig, explicit: bool) -> DaemonConfig:
    """If our runtime was picked by default and can't even print its version, use runc."""
    import dataclasses
    import subprocess
    if explicit or cfg.default_runtime != "dockyard-runtime" or "runc" not in cfg.runtimes:
        return cfg
    try:
        ok = subprocess.run([cfg.runtime_path(), "--version"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    if ok:
        return cfg
    logging.getLogger("dockyard").warning("%s does not run; falling back to runc", cfg.runtime_path())
    return dataclasses.replace(cfg, default_runtime="runc")


class HeapTrimmer:
    """Gives freed heap back to the kernel: after start-up, and whenever the API has been quiet
    for ``quiet`` seconds after a request. glibc keeps what Python frees (and its dynamic mmap
    threshold puts 1 MiB I/O buffers on the heap after the first few), so a build or a pull
    left ~4 MB resident for good; ``malloc_trim(0)`` takes ~0.1 ms. Long-lived requests
    (events, logs -f, attach) do not hold it off: the timer restarts when any request ends."""

    def __init__(self, quiet: float = 2.0) -> None:
        import ctypes
        try:
            self._trim: Any = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):  # not glibc
            self._trim = None
        self.quiet = quiet
        self._timer: asyncio.TimerHandle | None = None

    def trim(self, collect: bool = False) -> None:
        """``collect``: a full garbage collection first (8-10 ms: at start-up only), so that
        start-up's cyclic garbage is free to give back."""
        self._timer = None
        if collect:
            import gc
            gc.collect()
        if self._trim is not None:
            self._trim(0)

    def middleware(self) -> Any:
        @web.middleware
        async def trim_when_quiet(request: web.Request, handler: Any) -> web.StreamResponse:
            try:
                return await handler(request)
            finally:
                if self._timer is not None:
                    self._timer.cancel()
                self._timer = asyncio.get_running_loop().call_later(self.quiet, self.trim)
        return trim_when_quiet


def _build_left_overs(cfg: DaemonConfig, images: Any) -> bool:
    """Did a build of a killed daemon leave temp dirs, step containers or snapshots behind?

    Cheap (no builder import): the builder is made on first use, so without this its
    start-up recovery would wait for the next build, and ``build-*`` snapshots of a killed
    build would outlive the images they were made from."""
    with contextlib.suppress(OSError), os.scandir(cfg.data_root / "builder" / "tmp") as it:
        if any(True for _ in it):
            return True
    # the step containers' runtime state (64-hex names; "#seccomp" and the like stay)
    with contextlib.suppress(OSError), os.scandir(cfg.exec_root / "build") as it:
        if any(len(e.name) == 64 for e in it):
            return True
    return any(i.key.startswith("build-") for i in images.snapshots.list())


async def _drop_stale_runtime_state(containers: ContainerService) -> None:
    """A start killed half-way leaves, for a container whose record is not running, the
    runtime's state (and an init process waiting at the start barrier), its network namespace,
    mounts: undo them as an exit would, or the next start fails ("container with given ID
    already exists", "File exists: <exec-root>/netns/<id>")."""
    netns = containers.cfg.exec_root / "netns"
    for rec in list(containers.containers.values()):
        if rec.status.value in ("running", "paused", "restarting"):
            continue
        if not ((containers.runtime_root / rec.id).exists() or (netns / rec.id).exists()):
            continue
        with contextlib.suppress(Exception):
            await containers.monitor.request(
                {"op": "delete", "id": rec.id, "runtime": containers.runtime_argv(rec)})
        with contextlib.suppress(Exception):
            await containers._cleanup_after_exit(rec)


def _frozen(pid: int) -> bool:
    """Is the process's cgroup frozen (v1 freezer or v2 cgroup.freeze)?"""
    from dockyard.daemon.stats import cgroup_dirs

    dirs = cgroup_dirs(pid)
    try:
        if "freezer" in dirs:
            return (dirs["freezer"] / "freezer.state").read_text().strip() != "THAWED"
        if "unified" in dirs and (dirs["unified"] / "cgroup.freeze").exists():
            return (dirs["unified"] / "cgroup.freeze").read_text().strip() == "1"
    except OSError:
        pass
    return False


async def _reconcile_pause(containers: ContainerService) -> None:
    """Resume what a killed daemon left frozen against the record: a pause whose record save
    never came (the record says running), and ``docker commit``'s own pause (the marker)."""
    for rec in list(containers.containers.values()):
        marker = containers.store.dir(rec.id) / COMMIT_PAUSE_MARKER
        with contextlib.suppress(Exception):
            if rec.status is Status.RUNNING and rec.state.pid and _frozen(rec.state.pid):
                await containers._runtime(rec, ["resume", rec.id])
            elif rec.status is Status.PAUSED and marker.exists():
                await containers.unpause(rec.id)
        marker.unlink(missing_ok=True)


def _recover_builds(services: Any) -> None:
    from dockyard.api.build import builder_of

    builder_of(services)  # its constructor sweeps what the killed builds left


async def serve(cfg: DaemonConfig) -> None:
    from dockyard.api.app import build_app
    from dockyard.images.service import ImageService

    cfg.data_root.mkdir(parents=True, exist_ok=True)
    cfg.exec_root.mkdir(parents=True, exist_ok=True)
    # One daemon per data root: a second one would fight over the socket and the monitor.
    lock_fd = os.open(cfg.data_root / "dockyardd.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise errors.Conflict(f"another dockyardd is running on data root {cfg.data_root}") from None
    images = ImageService(cfg.data_root / "image")
    bus = EventBus()
    monitor = MonitorClient(cfg.exec_root)
    netmgr = await asyncio.get_running_loop().run_in_executor(
        None, open_manager, cfg.data_root, cfg.network_instance, cfg.default_bind_ip,
        cfg.default_network_opts)
    networking = Networking(netmgr, cfg.exec_root, emit=bus.emit)
    holder: list[ContainerService] = []
    volumes = _open_volumes(cfg, lambda name: [r.id for r in holder[0].containers.values()
                                               if any(m.get("source") == name or m.get("Source") == name
                                                      for m in r.mounts)] if holder else [])
    containers = ContainerService(cfg, images, monitor, bus, networking, volumes)
    holder.append(containers)
    await containers.restore()
    await _drop_stale_runtime_state(containers)
    await _reconcile_pause(containers)
    await asyncio.get_running_loop().run_in_executor(None, images.sweep_rootfs, set(containers.containers))
    if volumes is not None:
        live = [r.id for r in containers.containers.values() if r.status.value in ("running", "paused")]
        await asyncio.get_running_loop().run_in_executor(None, volumes.reconcile, live)
    services = Services(cfg, images, containers, bus, _daemon_id(cfg), networks=netmgr, volumes=volumes)
    if _build_left_overs(cfg, images):
        await asyncio.get_running_loop().run_in_executor(None, _recover_builds, services)
    app = build_app(services)
    trimmer = HeapTrimmer()
    app.middlewares.append(trimmer.middleware())
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    sock = cfg.socket_path
    os.makedirs(os.path.dirname(sock) or ".", exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(sock)
    site = web.UnixSite(runner, sock)
    await site.start()
    os.chmod(sock, 0o660)
    trimmer.trim(collect=True)
    logging.getLogger("dockyard").info("dockyardd listening on %s (runtime %s)", cfg.host,
                                       cfg.runtime_path())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log = logging.getLogger("dockyard")
    log.info("shutting down (running containers keep running)")
    await containers.shutdown()
    await networking.close(len(containers.containers), cfg.network_instance)
    await runner.cleanup()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(sock)
    images.close()
    if netmgr is not None:
        netmgr.close()
    os.close(lock_fd)


def main(argv: list[str] | None = None) -> None:
    try:
        cfg = parse_args(argv)
    except errors.DockyardError as e:
        print(f"dockyardd: {e}", file=sys.stderr)
        sys.exit(1)
    level = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
             "error": logging.ERROR, "fatal": logging.CRITICAL}[cfg.log_level]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    explicit = any(a == "--default-runtime" or a.startswith("--default-runtime=")
                   for a in (argv if argv is not None else sys.argv[1:]))
    cfg = _usable_runtime(cfg, explicit)
    try:
        asyncio.run(serve(cfg))
    except errors.DockyardError as e:
        print(f"dockyardd: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
