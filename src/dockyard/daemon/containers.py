"""The container service: create, start, stop, kill, wait, remove... over records and the monitor.

Start is a sequence of steps, each undone if a later one fails::

    mount rootfs (image service)  ->  network (none | host | a driver's netns)
    ->  config.json (oci_spec)     ->  monitor: runtime create  ->  monitor: runtime start

Exit (published by the monitor, or found at reconciliation after a daemon restart) runs the
undo steps, records the exit code, wakes waiters, applies the restart policy and AutoRemove.

Bundles live under ``<exec-root>/bundles/<id>/`` (config.json, rootfs/ mount point, runtime.log,
exec-<id>.json process files); the runtime's state under ``<exec-root>/runtime``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import shutil
import signal as sigmod
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockyard import errors
from dockyard.daemon import links, names, oci_spec, sharing, shm
from dockyard.daemon.config import DaemonConfig
from dockyard.daemon.events import EventBus
from dockyard.daemon.health import HealthMonitor
from dockyard.daemon.monitor_client import MonitorClient, RuntimeFailure
from dockyard.daemon.mounts import Mounts
from dockyard.daemon.networking import Networking, desired_networks
from dockyard.daemon.record import ZERO_TIME, ContainerRecord, RecordStore, RunState, now_rfc3339
from dockyard.daemon.state import Status

log = logging.getLogger("dockyard.containers")

NETWORK_MODES = ("none", "host", "default", "bridge")


def parse_signal(sig: str | int | None, default: int = sigmod.SIGKILL) -> int:
    if sig is None or sig == "":
        return default
    if isinstance(sig, int) or str(sig).isdigit():
        n = int(sig)
        if n <= 0 or n > 64:
            raise errors.InvalidArgument(f"Invalid signal: {sig}")
        return n
    name = str(sig).upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return int(getattr(sigmod, name))
    except AttributeError:
        raise errors.InvalidArgument(f"Invalid signal: {sig}") from None


@dataclass
class ExecRecord:
    id: str
    container_id: str
    config: dict[str, Any]
    running: bool = False
    exit_code: int | None = None
    pid: int = 0
    started: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)
    # a resize that arrived after start's 101 but before the process existed (the docker CLI
    # sends one at once): applied as soon as the monitor has the pty
    pending_size: tuple[int, int] | None = None


class ContainerService:
    def __init__(self, cfg: DaemonConfig, images: Any, monitor: MonitorClient, events: EventBus,
                 networking: Networking | None = None, volumes: Any = None) -> None:
        self.cfg = cfg
        self.networking = networking or Networking(None, cfg.exec_root)
        self.mounts = Mounts(volumes, lambda ref: Mounts.plans(self.get(ref)))
        self.images = images
        self.monitor = monitor
        self.events = events
        self.store = RecordStore(cfg.data_root)
        self.bundles = cfg.exec_root / "bundles"
        self.runtime_root = cfg.exec_root / "runtime"
        self.containers: dict[str, ContainerRecord] = {}
        self.order: dict[str, int] = {}  # id -> creation sequence (for before/since filters)
        self.seq = 0
        self.names: dict[str, str] = {}
        self.execs: dict[str, ExecRecord] = {}
        self.locks: dict[str, asyncio.Lock] = {}
        self.exit_waiters: dict[str, list[asyncio.Future[int]]] = {}
        self.removed_waiters: dict[str, list[asyncio.Future[int]]] = {}
        self.exits: dict[str, asyncio.Event] = {}
        # attach requests that arrived before start: connected between runtime create and start
        self.pending_attach: dict[str, list[tuple[dict[str, Any], asyncio.Future[Any]]]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.started_at: dict[str, float] = {}  # id -> monotonic time of the last start
        self.backoff: dict[str, float] = {}  # id -> the restart policy's last delay
        # id -> pid of a half-made init discarded at restore: its exit is none of the container's
        self.discarded: dict[str, int] = {}
        self.health = HealthMonitor(self)

    # lookup -------------------------------------------------------------------------------------
    def get(self, ref: str) -> ContainerRecord:
        ref = ref.lstrip("/") if ref.startswith("/") else ref
        if ref in self.containers:
            return self.containers[ref]
        if ref in self.names:
            return self.containers[self.names[ref]]
        if ref:
            found = [c for cid, c in self.containers.items() if cid.startswith(ref)]
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise errors.InvalidArgument(f"multiple IDs found with provided prefix: {ref}")
        raise errors.NotFound(f"No such container: {ref}")

    def _find(self, ref: str) -> ContainerRecord | None:
        try:
            return self.get(ref)
        except errors.DockyardError:
            return None

    def lock(self, cid: str) -> asyncio.Lock:
        return self.locks.setdefault(cid, asyncio.Lock())

    def runtime_argv(self, rec: ContainerRecord) -> list[str]:
        return [self.cfg.runtime_path(rec.runtime), "--root", str(self.runtime_root)]

    def spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # restore -------------------------------------------------------------------------------------
    async def restore(self) -> None:
        """Load records, reconnect to the monitor, reconcile, and follow its exit events."""
        self.bundles.mkdir(parents=True, exist_ok=True)
        self.runtime_root.mkdir(parents=True, exist_ok=True)
        for rec in sorted(self.store.load_all(), key=lambda r: r.created):
            if rec.status is Status.REMOVING:
                # a removal the daemon died in: "Dead", as dockerd's; a new rm finishes it
                rec.state.status = Status.DEAD
            self._index(rec)
        await self.monitor.connect()
        ready = asyncio.get_running_loop().create_future()
        self.spawn(self._follow_monitor(ready))
        await ready

    def _index(self, rec: ContainerRecord) -> None:
        self.containers[rec.id] = rec
        self.names[rec.name] = rec.id
        self.seq += 1
        self.order[rec.id] = self.seq
        if rec.status in (Status.RUNNING, Status.PAUSED):
            self.exits.setdefault(rec.id, asyncio.Event())
            if rec.status is Status.RUNNING:
                health = rec.state.health
                self.health.start(rec)
                if health is not None:
                    rec.state.health = health

    async def _follow_monitor(self, ready: asyncio.Future[None]) -> None:
        async for ev in self.monitor.subscribe():
            try:
                if ev.get("reconnected"):
                    await self._reconcile()
                    if not ready.done():
                        ready.set_result(None)
                elif ev.get("kind") == "exec":
                    self._exec_exited(ev["id"], int(ev["exit_code"]))
                elif self.discarded.get(ev["id"]) == int(ev.get("pid") or 0):
                    del self.discarded[ev["id"]]
                else:
                    self.spawn(self._on_exit(ev["id"], int(ev["exit_code"]), ev.get("exited_at", "")))
            except Exception:  # noqa: BLE001 - keep following whatever one record does
                log.exception("handling monitor event %s", ev)

    async def _reconcile(self) -> None:
        reply = await self.monitor.request({"op": "list"})
        known = {r["id"]: r for r in reply["records"] if r.get("kind") == "init"}
        for rec in list(self.containers.values()):
            if rec.status not in (Status.RUNNING, Status.PAUSED, Status.RESTARTING):
                continue
            m = known.get(rec.id)
            if m is not None and m["running"]:
                if rec.status is Status.RESTARTING:
                    # the daemon died in the middle of a policy restart, between the runtime's
                    # create and start (its network half made): discard that task and resume the
                    # restart. Its SIGKILL is no exit of the container's: recorded, it read
                    # "exited (137)" (and a "die" event) in place of the exit that made the
                    # policy restart, as dockerd never shows
                    self.discarded[rec.id] = int(m.get("pid") or 0)
                    self.spawn(self._discard_and_restart(rec))
                continue
            if rec.status is Status.RESTARTING and m is None:
                # the daemon stopped while a restart policy waited out its back-off (or began
                # the start): no exit to record (a 255 would stand in for the real one); undo
                # what a begun start left (rootfs, volumes, netns), then restart
                self.spawn(self._resume_restart(rec))
                continue
            code = m["exit_code"] if m is not None else 255
            self.spawn(self._on_exit(rec.id, int(code), m.get("exited_at", "") if m else ""))
        for rid, m in known.items():
            if rid not in self.containers and not m["running"]:
                await self.monitor.request({"op": "forget", "id": rid})
        live = [r.id for r in self.containers.values()
                if (known.get(r.id) or {}).get("running")]
        if self.networking.mgr is not None:
            with contextlib.suppress(Exception):
                await asyncio.get_running_loop().run_in_executor(None, self.networking.mgr.reconcile, live)
            for cid in live:
                await self.networking.reattach_dns(self.containers[cid])
        for rec in list(self.containers.values()):
            policy = (rec.host_config.get("RestartPolicy") or {}).get("Name") or "no"
            if rec.status is Status.EXITED and policy in ("always", "unless-stopped") \
                    and not rec.manually_stopped and rec.has_been_started and rec.id not in known:
                self.spawn(self._restart_later(rec.id, 0))

    # create -------------------------------------------------------------------------------------
    async def create(self, body: dict[str, Any], name: str | None, platform: str | None = None) -> tuple[str, list[str]]:
        if not isinstance(body, dict):
            raise errors.InvalidArgument("config cannot be empty in order to create a container")
        image_ref = body.get("Image") or ""
        for k in ("Cmd", "Entrypoint", "Env"):
            v = body.get(k)
            if v is not None and not (isinstance(v, list) and all(isinstance(x, str) for x in v)):
                if k != "Entrypoint" and k != "Cmd" or not isinstance(v, str):
                    raise errors.InvalidArgument(f"Config.{k}: expected a list of strings, got {v!r}")
                body[k] = [v]  # docker accepts a string for Cmd/Entrypoint
        if not isinstance(image_ref, str):
            raise errors.InvalidArgument(f"Config.Image: expected a string, got {image_ref!r}")
        if body.get("HostConfig") is not None and not isinstance(body["HostConfig"], dict):
            raise errors.InvalidArgument("HostConfig: expected an object")
        if not image_ref:
            raise errors.InvalidArgument("No image specified: config.Image is empty")
        hc = dict(body.get("HostConfig") or {})
        self._validate_host_config(hc)
        if body.get("StopSignal"):
            parse_signal(body["StopSignal"])
        wd = body.get("WorkingDir")
        if wd and not (isinstance(wd, str) and wd.startswith("/")):
            raise errors.InvalidArgument(f"the working directory '{wd}' is invalid, it needs to be an absolute path")
        sharing.validate_create(body, hc)
        sharing.resolve_donors(hc, self._find)
        if name:
            name = names.validate(name)
            if name in self.names:
                other = self.names[name]
                raise errors.Conflict(
                    f'Conflict. The container name "/{name}" is already in use by container "{other}". '
                    "You have to remove (or rename) that container to be able to reuse that name.")
        else:
            name = names.generate(set(self.names))
        image = self.images.get(image_ref)
        config = merge_config(body, image.container_config)
        cmd = oci_spec.command_of(config)
        if not cmd:
            raise errors.InvalidArgument("no command specified")
        runtime = hc.get("Runtime") or self.cfg.default_runtime
        self.cfg.runtime_path(runtime)
        cid = secrets.token_hex(32)
        hc.setdefault("NetworkMode", "default")
        hc["Runtime"] = runtime
        hc.setdefault("LogConfig", {"Type": "json-file", "Config": {}})
        if not (hc["LogConfig"] or {}).get("Type"):
            hc["LogConfig"] = {"Type": "json-file", "Config": (hc["LogConfig"] or {}).get("Config") or {}}
        if hc["LogConfig"]["Type"] not in LOG_DRIVERS:
            raise errors.InvalidArgument(f"logger: no log driver named '{hc['LogConfig']['Type']}' is registered")
        rec = ContainerRecord(id=cid, name=name, created=now_rfc3339(), image=image_ref, image_id=image.id,
                              config=config, host_config=hc, path=cmd[0], args=cmd[1:], runtime=runtime,
                              network_settings={"_request": body.get("NetworkingConfig") or {}})
        self.names[name] = cid  # reserve the name before awaiting anything
        d = self.store.dir(cid)
        try:
            d.mkdir(parents=True)
            self._write_etc_files(rec)
            loop = asyncio.get_running_loop()
            rec.mounts = await loop.run_in_executor(None, self.mounts.plan, cid, hc, config)
            await loop.run_in_executor(None, self.images.prepare_rootfs, image.id, cid)
            self.store.save(rec)
        except BaseException:
            self.names.pop(name, None)
            self.mounts.remove_anonymous(rec)
            with contextlib.suppress(Exception):
                self.images.remove_rootfs(cid)
            shutil.rmtree(d, ignore_errors=True)
            raise
        self._index(rec)
        self.events.emit("container", "create", cid, self._attrs(rec))
        return cid, self.networking.create_warnings(hc)

    _INT_FIELDS = ("Memory", "MemorySwap", "MemoryReservation", "NanoCpus", "CpuShares", "CpuPeriod",
                   "CpuQuota", "PidsLimit", "ShmSize", "OomScoreAdj", "BlkioWeight", "MemorySwappiness")
    _LIST_FIELDS = ("Binds", "CapAdd", "CapDrop", "Dns", "DnsOptions", "DnsSearch", "ExtraHosts",
                    "GroupAdd", "SecurityOpt", "Ulimits", "Devices", "VolumesFrom", "Mounts")
    _DICT_FIELDS = ("RestartPolicy", "LogConfig", "PortBindings", "Tmpfs", "Sysctls")

    def _check_types(self, hc: dict[str, Any]) -> None:
        """Wrongly typed fields are the client's error (400 naming the field), not ours (500)."""
        for k in self._INT_FIELDS:
            v = hc.get(k)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
                raise errors.InvalidArgument(f"HostConfig.{k}: expected an integer, got {v!r}")
        for k in self._LIST_FIELDS:
            v = hc.get(k)
            if v is not None and not isinstance(v, list):
                raise errors.InvalidArgument(f"HostConfig.{k}: expected a list, got {v!r}")
        for k in self._DICT_FIELDS:
            v = hc.get(k)
            if v is not None and not isinstance(v, dict):
                raise errors.InvalidArgument(f"HostConfig.{k}: expected an object, got {v!r}")
        for k in ("CpusetCpus", "CpusetMems", "NetworkMode", "Runtime"):
            v = hc.get(k)
            if v is not None and not isinstance(v, str):
                raise errors.InvalidArgument(f"HostConfig.{k}: expected a string, got {v!r}")

    def _validate_host_config(self, hc: dict[str, Any]) -> None:
        self._check_types(hc)
        rp = hc.get("RestartPolicy") or {}
        pname = rp.get("Name") or "no"
        if pname not in ("no", "always", "unless-stopped", "on-failure"):
            raise errors.InvalidArgument(f"invalid restart policy '{pname}'")
        if rp.get("MaximumRetryCount") and pname != "on-failure":
            raise errors.InvalidArgument("invalid restart policy: maximum retry count can only be used with 'on-failure'")
        if (rp.get("MaximumRetryCount") or 0) < 0:
            raise errors.InvalidArgument("invalid restart policy: maximum retry count cannot be negative")
        if hc.get("AutoRemove") and pname != "no":
            raise errors.InvalidArgument("can't create 'AutoRemove' container with restart policy")
        # an unknown network fails the start, not the create (as dockerd: the network may be
        # created in between; and a 404 here would make the docker CLI try to pull the image)
        if (hc.get("Memory") or 0) and 0 < hc["Memory"] < 6 * 1024 * 1024:
            raise errors.InvalidArgument("Minimum memory limit allowed is 6MB")
        swap = hc.get("MemorySwap") or 0
        if swap > 0 and hc.get("Memory") and swap < hc["Memory"]:
            raise errors.InvalidArgument("Minimum memoryswap limit should be larger than memory limit, see usage")
        if swap and not hc.get("Memory") and swap != -1:
            raise errors.InvalidArgument("You should always set the Memory limit when using Memoryswap limit, see usage")
        if hc.get("NanoCpus") and (hc.get("CpuQuota") or hc.get("CpuPeriod")):
            raise errors.InvalidArgument("Conflicting options: Nano CPUs and CPU Period cannot both be set")
        if hc.get("NanoCpus") and hc["NanoCpus"] > (os.cpu_count() or 1) * 1_000_000_000:
            raise errors.InvalidArgument(
                f"Range of CPUs is from 0.01 to {os.cpu_count()}.00, as there are only {os.cpu_count()} CPUs available")
        for key, what, avail in (("CpusetCpus", ("cpus", "CPUs"), _available("cpus")),
                                 ("CpusetMems", ("mems", "memory nodes"), _available("mems"))):
            if hc.get(key):
                wanted = _cpu_list(hc[key])
                if wanted is None:
                    raise errors.InvalidArgument(f"Invalid value {hc[key]} for cpuset {what[0]}")
                if avail and not wanted <= (_cpu_list(avail) or set()):
                    raise errors.InvalidArgument(f"Requested {what[1]} are not available - requested "
                                                 f"{hc[key]}, available: {avail}")
        oci_spec.capabilities(hc)
        for ul in hc.get("Ulimits") or []:
            if str(ul.get("Name", "")).lower() not in oci_spec.RLIMITS:
                raise errors.InvalidArgument(f"invalid ulimit type: {ul.get('Name')}")
        oci_spec._no_new_privs(list(hc.get("SecurityOpt") or []))

    def _write_etc_files(self, rec: ContainerRecord) -> None:
        d = self.store.dir(rec.id)
        hostname = rec.config.get("Hostname") or rec.id[:12]
        (d / "hostname").write_text(hostname + "\n")
        hosts = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
                 "fe00::0\tip6-localnet", "ff00::0\tip6-mcastprefix", "ff02::1\tip6-allnodes",
                 "ff02::2\tip6-allrouters"]
        for extra in rec.host_config.get("ExtraHosts") or []:
            host, _, ip = extra.partition(":")
            hosts.append(f"{ip}\t{host}")
        (d / "hosts").write_text("\n".join(hosts) + "\n")
        try:
            resolv = Path("/etc/resolv.conf").read_text()
        except OSError:
            resolv = ""
        lines = [ln for ln in resolv.splitlines()
                 if not (ln.startswith("nameserver") and (" 127." in ln or " ::1" in ln))]
        dns = rec.host_config.get("Dns") or []
        if dns:
            lines = [ln for ln in lines if not ln.startswith("nameserver")] + [f"nameserver {x}" for x in dns]
        if not any(ln.startswith("nameserver") for ln in lines):
            lines += ["nameserver 8.8.8.8", "nameserver 8.8.4.4"]
        if rec.host_config.get("DnsSearch"):
            lines = [ln for ln in lines if not ln.startswith("search")] + ["search " + " ".join(rec.host_config["DnsSearch"])]
        if rec.host_config.get("DnsOptions"):
            lines.append("options " + " ".join(rec.host_config["DnsOptions"]))
        (d / "resolv.conf").write_text("\n".join(lines) + "\n")

    # start --------------------------------------------------------------------------------------
    async def start(self, ref: str) -> None:
        rec = self.get(ref)
        async with self.lock(rec.id):
            if rec.status in (Status.RUNNING, Status.PAUSED):
                raise errors.NotModified("container already started")
            if rec.status in (Status.REMOVING, Status.DEAD):
                raise errors.Conflict("container is marked for removal and cannot be started")
            self._reset_restart_policy(rec)
            await self._start_locked(rec)

    def _reset_restart_policy(self, rec: ContainerRecord) -> None:
        """A start or restart by the user begins the policy afresh (dockerd's
        ``ResetRestartManager(true)``): RestartCount 0, back-off 100 ms."""
        rec.restart_count = 0
        self.backoff.pop(rec.id, None)

    async def _start_locked(self, rec: ContainerRecord) -> None:
        bundle = self.bundles / rec.id
        rootfs = bundle / "rootfs"
        undo: list[Callable[[], Any]] = []
        try:
            bundle.mkdir(parents=True, exist_ok=True)
            undo.append(lambda: shutil.rmtree(bundle, ignore_errors=True))
            rootfs.mkdir(exist_ok=True)
            self.images.mount_rootfs(rec.id, rootfs)
            undo.append(lambda: self.images.unmount_rootfs(rootfs))
            extra = await asyncio.get_running_loop().run_in_executor(None, self.mounts.start, rec, rootfs)
            undo.append(lambda: self.mounts.stop(rec))
            for name, attrs in self.mounts.events(rec, "mount"):
                self.events.emit("volume", "mount", name, attrs)
            join = self._shared_namespaces(rec)
            linked = links.setup(rec, self.get, "bridge" in desired_networks(rec))
            shm_src = self._shm_source(rec)
            if hc_ipc(rec) == "shareable":
                undo.append(lambda: shm.unmount(self.store.dir(rec.id)))
            if sharing.donor_ref(rec.host_config, "network") is not None:
                netns, net_ready = join.pop("network"), _ready()
            else:
                rec.network_settings.pop("EtcDir", None)
                # the namespace now; veths, ports, DNS while the runtime creates (awaited before start)
                netns, net_ready = await self.networking.begin(rec, self.store.dir(rec.id),
                                                               extra_hosts=linked.hosts)
                undo.append(lambda: self.spawn(self.networking.teardown(rec)))
            etc = self.etc_dir(rec)
            hc = rec.host_config
            if rec.mounts:  # the volume plans carry --tmpfs too
                hc = {**hc, "Tmpfs": None, "ExtraMounts": extra}
            spec = oci_spec.build_spec(oci_spec.SpecInputs(
                cid=rec.id, config={**rec.config, "Env": [*linked.env, *(rec.config.get("Env") or [])]},
                host_config=hc, rootfs=rootfs,
                hostname_path=etc / "hostname", hosts_path=etc / "hosts", resolv_path=etc / "resolv.conf",
                cgroups_path=f"dockyard/{rec.id}", netns=netns, init_path=self._init_path(rec),
                join=tuple(sorted(join.items())), shm=shm_src))
            write_json(bundle / "config.json", spec)
            log_cfg = (rec.host_config.get("LogConfig") or {}).get("Config") or {}
            log_path = self.log_path(rec) if (rec.host_config.get("LogConfig") or {}).get("Type", "json-file") in ("json-file", "local", "") else ""
            cfg = rec.config
            reply = await self.monitor.request({
                "op": "create", "id": rec.id, "bundle": str(bundle), "runtime": self.runtime_argv(rec),
                "tty": bool(cfg.get("Tty")), "stdin": bool(cfg.get("OpenStdin")),
                "stdin_once": bool(cfg.get("StdinOnce")), "log_path": log_path,
                "log_max_size": oci_spec.parse_size(log_cfg["max-size"]) if log_cfg.get("max-size") else 0,
                "log_max_file": int(log_cfg.get("max-file") or 1),
                "console_size": list(rec.host_config.get("ConsoleSize") or [0, 0])})
            undo.append(lambda: self.spawn(self.monitor.request(
                {"op": "delete", "id": rec.id, "runtime": self.runtime_argv(rec)})))
            await net_ready
            self.exits[rec.id] = asyncio.Event()
            await self._connect_pending_attach(rec.id)
            await self.monitor.request({"op": "start", "id": rec.id, "bundle": str(bundle)})
        except BaseException as e:
            self._drop_pending_attach(rec.id)
            for step in reversed(undo):
                with contextlib.suppress(Exception):
                    step()
            if isinstance(e, RuntimeFailure | errors.DockyardError):
                msg = str(e)
                if isinstance(e, RuntimeFailure):
                    msg = f"failed to create task for container: OCI runtime create failed: {msg}: unknown"
                code = 128
                if "executable file not found" in msg or "no such file or directory" in msg:
                    code = 127
                elif "permission denied" in msg:
                    code = 126
                rec.state.error = msg
                rec.state.exit_code = code
                if rec.status in (Status.RUNNING, Status.RESTARTING):
                    rec.state.status = Status.EXITED
                self.store.save(rec)
                self.events.emit("container", "die", rec.id, {**self._attrs(rec), "exitCode": str(code)})
                for fut in self.exit_waiters.pop(rec.id, []):
                    if not fut.done():
                        fut.set_result(code)
                if rec.host_config.get("AutoRemove"):
                    # the CLI waits for the removal of a --rm container whose start failed
                    self.spawn(self.remove(rec.id, force=True))
                if isinstance(e, RuntimeFailure):
                    raise (errors.InvalidArgument if code in (126, 127) else errors.Internal)(msg) from None
            raise
        rec.move(Status.RUNNING)
        rec.state = RunState(status=Status.RUNNING, pid=int(reply["pid"]), started_at=now_rfc3339(),
                             health=rec.state.health)
        rec.has_been_started = True
        rec.manually_stopped = False
        self.health.start(rec)
        self.started_at[rec.id] = time.monotonic()
        self.store.save(rec)
        self.events.emit("container", "start", rec.id, self._attrs(rec))

    def _shared_namespaces(self, rec: ContainerRecord) -> dict[str, str]:
        """``{kind: "host" | /proc/<pid>/ns/<kind>}`` for the namespaces ``rec`` doesn't get
        a new one of (--pid/--ipc host|container:<x>, --network container:<x>). A network
        joiner takes its donor's hostname and /etc files (see :mod:`dockyard.daemon.sharing`)."""
        hc = rec.host_config
        join = {kind: "host" for kind in ("pid", "ipc") if hc.get(sharing.KINDS[kind][0]) == "host"}
        for kind in sharing.KINDS:
            if sharing.donor_ref(hc, kind) is not None:
                d = sharing.donor(rec, kind, self._find)
                join[kind] = sharing.ns_path(d, kind)
                if kind == "network":
                    rec.network_settings["EtcDir"] = str(self.etc_dir(d))
                    rec.config["Hostname"] = d.config.get("Hostname") or d.id[:12]
                    rec.config["Domainname"] = d.config.get("Domainname") or ""
        return join

    def _shm_source(self, rec: ContainerRecord) -> str | None:
        """The spec's /dev/shm (see ``oci_spec.SpecInputs.shm``) for the container's IpcMode;
        a shareable container's host-side tmpfs is mounted here (:mod:`dockyard.daemon.shm`)."""
        mode = hc_ipc(rec)
        if mode == "none":
            return ""
        if mode == "host":
            return "/dev/shm"
        if mode == "shareable":
            size = int(rec.host_config.get("ShmSize") or 64 << 20)
            return str(shm.mount(self.store.dir(rec.id), size))
        if sharing.donor_ref(rec.host_config, "ipc") is not None:
            d = sharing.donor(rec, "ipc", self._find)
            path = shm.path_of(self.store.dir(d.id))
            if hc_ipc(d) != "shareable" or not os.path.ismount(path):
                raise errors.InvalidArgument(f"container {d.id}: non-shareable IPC (hint: use "
                                             "IpcMode:shareable for the donor container)")
            return str(path)
        return None

    def etc_dir(self, rec: ContainerRecord) -> Path:
        """The folder of the /etc/hosts, resolv.conf and hostname that ``rec`` bind-mounts:
        its own, or, for ``--network container:<x>``, the donor's (as at its last start)."""
        shared = rec.network_settings.get("EtcDir")
        return Path(shared) if shared else self.store.dir(rec.id)

    async def attach_stream(self, cid: str, opts: dict[str, Any]) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """A monitor stream of the container's output (and stdin); waits for start if needed."""
        rec = self.get(cid)
        msg = {"op": "attach", "id": rec.id, **opts}
        if rec.status in (Status.RUNNING, Status.PAUSED):
            try:
                r, w, _ = await self.monitor.open_stream(msg)
                return r, w
            except errors.NotFound:
                return None
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending_attach.setdefault(rec.id, []).append((msg, fut))
        return await fut

    async def _connect_pending_attach(self, cid: str) -> None:
        for msg, fut in self.pending_attach.pop(cid, []):
            if fut.done():
                continue
            try:
                r, w, _ = await self.monitor.open_stream(msg)
                fut.set_result((r, w))
            except errors.DockyardError:
                fut.set_result(None)

    def _drop_pending_attach(self, cid: str) -> None:
        for _, fut in self.pending_attach.pop(cid, []):
            if not fut.done():
                fut.set_result(None)

    def _init_path(self, rec: ContainerRecord) -> str | None:
        if not rec.host_config.get("Init"):
            return None
        # a static reaper: it runs inside the container's rootfs, which has no host libraries
        for cand in ("/usr/bin/tini-static", "/usr/libexec/docker/docker-init", "/usr/bin/docker-init"):
            if os.path.exists(cand):
                return cand
        raise errors.InvalidArgument("--init: no static init binary (apt-get install tini) on this host")

    def log_path(self, rec: ContainerRecord) -> str:
        return str(self.store.dir(rec.id) / f"{rec.id}-json.log")

    # exit ---------------------------------------------------------------------------------------
    async def _on_exit(self, cid: str, code: int, exited_at: str) -> None:
        rec = self.containers.get(cid)
        if rec is None:
            await self.monitor.request({"op": "forget", "id": cid})
            return
        async with self.lock(cid):
            if rec.status not in (Status.RUNNING, Status.PAUSED, Status.RESTARTING):
                await self.monitor.request({"op": "forget", "id": cid})
                return
            await self._cleanup_after_exit(rec)
            self.health.stop(cid)
            if rec.state.health is not None:
                rec.state.health["Status"] = "unhealthy"
            rec.state.status = Status.EXITED
            rec.state.exit_code = code
            rec.state.pid = 0
            rec.state.finished_at = exited_at or now_rfc3339()
            rec.state.oom_killed = code == 137 and self._oom_killed(rec)
            delay = None if rec.host_config.get("AutoRemove") else self._restart_delay(rec, code)
            if delay is not None:  # as dockerd: never "exited" in between, for anyone polling
                rec.state.status = Status.RESTARTING
            self.store.save(rec)
            # "delete", not "forget": a monitor that was killed left the runtime's state (and
            # cgroup) of its containers; its successor has no process for them and deletes that
            # state, or the next start fails with "container with given ID already exists"
            await self.monitor.request({"op": "delete", "id": cid, "runtime": self.runtime_argv(rec)})
        self.events.emit("container", "die", cid, {**self._attrs(rec), "exitCode": str(code)})
        for fut in self.exit_waiters.pop(cid, []):
            if not fut.done():
                fut.set_result(code)
        ev = self.exits.pop(cid, None)
        if ev is not None:
            ev.set()
        for ex in self.execs.values():
            if ex.container_id == cid and ex.running:
                ex.running = False
        if rec.host_config.get("AutoRemove"):
            with contextlib.suppress(errors.DockyardError):
                await self.remove(cid, force=True)
            return
        if delay is not None:
            self.spawn(self._restart_later(cid, delay))

    def _oom_killed(self, rec: ContainerRecord) -> bool:
        return False  # the cgroup is gone once the runtime deleted it; stats track OOM while running

    async def _cleanup_after_exit(self, rec: ContainerRecord) -> None:
        bundle = self.bundles / rec.id
        with contextlib.suppress(Exception):
            self.images.unmount_rootfs(bundle / "rootfs")
        await asyncio.get_running_loop().run_in_executor(None, self.mounts.stop, rec)
        for name, attrs in self.mounts.events(rec, "unmount"):
            self.events.emit("volume", "unmount", name, attrs)
        if hc_ipc(rec) == "shareable":
            with contextlib.suppress(OSError):
                shm.unmount(self.store.dir(rec.id))
        shared = bool(sharing.joiners(rec, self.containers.values(), self._find))
        await self.networking.teardown(rec, shared=shared)

    def _restart_delay(self, rec: ContainerRecord, code: int) -> float | None:
        rp = rec.host_config.get("RestartPolicy") or {}
        name = rp.get("Name") or "no"
        if rec.manually_stopped or name == "no":
            return None
        if name == "on-failure":
            if code == 0:
                return None
            limit = rp.get("MaximumRetryCount") or 0
            if limit and rec.restart_count >= limit:
                return None
        # dockerd's back-off: 100 ms, doubled per quick exit up to a minute; a run of 10 s or
        # more (or one this daemon didn't see start) starts over at 100 ms
        began = self.started_at.pop(rec.id, None)
        prev = self.backoff.get(rec.id, 0.0)
        if began is None or time.monotonic() - began >= 10:
            prev = 0.0
        delay = 0.1 if prev == 0 else min(prev * 2, 60.0)
        self.backoff[rec.id] = delay
        return delay

    async def _discard_and_restart(self, rec: ContainerRecord) -> None:
        async with self.lock(rec.id):
            with contextlib.suppress(errors.DockyardError):  # kill, wait, runtime delete, forget
                await self.monitor.request({"op": "delete", "id": rec.id, "runtime": self.runtime_argv(rec)})
        await self._resume_restart(rec)

    async def _resume_restart(self, rec: ContainerRecord) -> None:
        async with self.lock(rec.id):
            await self._cleanup_after_exit(rec)
        await self._restart_later(rec.id, 0.1)

    async def _restart_later(self, cid: str, delay: float) -> None:
        rec = self.containers.get(cid)
        if rec is None:
            return
        async with self.lock(cid):
            if rec.status not in (Status.EXITED, Status.RESTARTING):
                return
            if rec.status is Status.EXITED:  # after a daemon restart (_on_exit marks its own)
                rec.state.status = Status.RESTARTING
                self.store.save(rec)
        await asyncio.sleep(delay)
        async with self.lock(cid):
            if rec.status is not Status.RESTARTING or cid not in self.containers:
                return
            rec.restart_count += 1
            self.store.save(rec)
            # stays "restarting" until the start is done: an "exited" in between (with the new
            # count) read as the policy's last word to anyone polling inspect
            try:
                await self._start_locked(rec)
                self.events.emit("container", "restart", cid, self._attrs(rec))
            except Exception:  # noqa: BLE001 - never left "restarting" by a failed start
                log.exception("restarting %s", cid)
                if rec.status is Status.RESTARTING:
                    rec.state.status = Status.EXITED
                    self.store.save(rec)

    # stop / kill / wait --------------------------------------------------------------------------
    def wait_exit(self, cid: str) -> asyncio.Future[int]:
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.exit_waiters.setdefault(cid, []).append(fut)
        return fut

    def wait_removed(self, cid: str) -> asyncio.Future[int]:
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.removed_waiters.setdefault(cid, []).append(fut)
        return fut

    async def wait(self, ref: str, condition: str) -> dict[str, Any]:
        rec = self.get(ref)
        if condition not in ("", "not-running", "next-exit", "removed"):
            raise errors.InvalidArgument(f"invalid condition: {condition!r}")
        if condition == "removed":
            code = await self.wait_removed(rec.id)
        elif condition == "next-exit":
            code = await self.wait_exit(rec.id)
        else:
            if rec.status not in (Status.RUNNING, Status.PAUSED, Status.RESTARTING):
                code = rec.state.exit_code
            else:
                code = await self.wait_exit(rec.id)
        err = rec.state.error
        return {"StatusCode": code, "Error": {"Message": err} if err else None}

    async def kill(self, ref: str, signal: str | int | None = None) -> None:
        rec = self.get(ref)
        sig = parse_signal(signal, sigmod.SIGKILL)
        if rec.status not in (Status.RUNNING, Status.PAUSED):
            raise errors.Conflict(f"Cannot kill container: {ref}: Container {rec.id} is not running")
        if sig in (sigmod.SIGKILL, sigmod.SIGTERM) or True:
            rec.manually_stopped = sig == sigmod.SIGKILL and rec.manually_stopped
        done = self.exits.get(rec.id)
        await self._signal(rec, sig)
        self.events.emit("container", "kill", rec.id, {**self._attrs(rec), "signal": str(sig)})
        if sig == sigmod.SIGKILL and done is not None:
            # dockerd's Kill waits for the exit a SIGKILL causes before answering: clients
            # inspect (or remove without force) right after a kill and expect it stopped
            await self._killed(rec, done)

    async def _signal(self, rec: ContainerRecord, sig: int) -> None:
        if rec.status is Status.PAUSED and sig == sigmod.SIGKILL:
            with contextlib.suppress(errors.DockyardError):
                await self._runtime(rec, ["resume", rec.id])
                rec.state.status = Status.RUNNING
        try:
            await self.monitor.request({"op": "kill", "id": rec.id, "signal": sig})
        except (errors.NotFound, errors.Conflict):
            pass  # it exited meanwhile

    async def stop(self, ref: str, timeout: int | None = None, signal: str | None = None) -> None:
        rec = self.get(ref)
        if rec.status not in (Status.RUNNING, Status.PAUSED, Status.RESTARTING):
            raise errors.NotModified("container already stopped")
        rec.manually_stopped = True
        self.store.save(rec)
        if rec.status is Status.RESTARTING:
            # waiting out the back-off: cancel the restart; starting: stop what it started
            async with self.lock(rec.id):
                if rec.status is Status.RESTARTING:
                    rec.state.status = Status.EXITED
                    self.store.save(rec)
                    return
        await self._stop(rec, timeout, signal)

    async def _stop(self, rec: ContainerRecord, timeout: int | None, signal: str | None) -> None:
        sig = parse_signal(signal or rec.config.get("StopSignal") or None, sigmod.SIGTERM)
        if timeout is None:
            timeout = rec.config.get("StopTimeout")
            if timeout is None:
                timeout = 10
        done = self.exits.get(rec.id)
        if done is None or rec.status not in (Status.RUNNING, Status.PAUSED):
            return
        if timeout != 0:
            await self._signal(rec, sig)
            if timeout < 0:
                await done.wait()
                return
            try:
                await asyncio.wait_for(asyncio.shield(done.wait()), timeout)
                return
            except TimeoutError:
                pass
        await self._signal(rec, sigmod.SIGKILL)
        await self._killed(rec, done)
        self.events.emit("container", "stop", rec.id, self._attrs(rec))

    async def _killed(self, rec: ContainerRecord, done: asyncio.Event) -> None:
        """Wait for the exit a SIGKILL causes. If the monitor never reports it (it was lost),
        record the exit ourselves rather than hang the caller."""
        try:
            await asyncio.wait_for(asyncio.shield(done.wait()), 15)
        except TimeoutError:
            log.warning("no exit reported for %s after SIGKILL: recording it as killed", rec.id)
            await self._on_exit(rec.id, 137, "")

    async def restart(self, ref: str, timeout: int | None = None, signal: str | None = None) -> None:
        rec = self.get(ref)
        if rec.status in (Status.RUNNING, Status.PAUSED):
            rec.manually_stopped = True
            await self._stop(rec, timeout, signal)
        async with self.lock(rec.id):
            if rec.status is Status.RUNNING:
                return
            if rec.status is Status.RESTARTING:
                rec.state.status = Status.EXITED
            self._reset_restart_policy(rec)
            await self._start_locked(rec)
        self.events.emit("container", "restart", rec.id, self._attrs(rec))

    # remove -------------------------------------------------------------------------------------
    async def remove_link(self, parent_ref: str, alias: str) -> None:
        """Drop the legacy link ``alias`` from ``parent_ref``'s HostConfig.Links (``name:alias``
        as clients send it, or dockerd's ``/name:/parent/alias``)."""
        rec = self.get(parent_ref)
        entries = list(rec.host_config.get("Links") or [])
        kept = [x for x in entries if x.partition(":")[2].rsplit("/", 1)[-1] != alias]
        if len(kept) == len(entries):
            raise errors.NotFound(f"No such container: {parent_ref}/{alias}")
        rec.host_config["Links"] = kept or None
        self.store.save(rec)

    async def remove(self, ref: str, force: bool = False, volumes: bool = False) -> None:
        rec = self.get(ref)
        if rec.status is Status.RESTARTING and force:
            rec.manually_stopped = True  # no restart after this; one in its start phase finishes first
            async with self.lock(rec.id):
                if rec.status is Status.RESTARTING:
                    rec.state.status = Status.EXITED
        if rec.status in (Status.RUNNING, Status.PAUSED, Status.RESTARTING):
            if not force:
                state = rec.status.value
                raise errors.Conflict(
                    f'cannot remove container "/{rec.name}": container is {state}: stop the container '
                    "before removing or force remove")
            rec.manually_stopped = True
            done = self.exits.get(rec.id)
            await self._signal(rec, sigmod.SIGKILL)
            if done is not None:
                await self._killed(rec, done)
        async with self.lock(rec.id):
            if rec.id not in self.containers:
                return
            if rec.status is Status.REMOVING:
                raise errors.Conflict(f"removal of container {rec.id} is already in progress")
            prev = rec.status
            rec.state.status = Status.REMOVING
            self.store.save(rec)  # a daemon killed from here on finds it "Dead" at start
            try:
                await self.monitor.request({"op": "delete", "id": rec.id, "runtime": self.runtime_argv(rec)})
                await self._cleanup_after_exit(rec)
                shutil.rmtree(self.bundles / rec.id, ignore_errors=True)
                with contextlib.suppress(errors.NotFound):  # a daemon killed in an earlier rm
                    await asyncio.get_running_loop().run_in_executor(None, self.images.remove_rootfs, rec.id)
                shutil.rmtree(self.store.dir(rec.id), ignore_errors=True)
            except BaseException:
                rec.state.status = Status.DEAD if prev is not Status.CREATED else prev
                with contextlib.suppress(OSError):
                    self.store.save(rec)
                raise
            del self.containers[rec.id]
            self.names.pop(rec.name, None)
            self.order.pop(rec.id, None)
            for eid in rec.exec_ids:
                self.execs.pop(eid, None)
            if volumes or rec.host_config.get("AutoRemove"):  # after the record is gone: not "in use"
                await asyncio.get_running_loop().run_in_executor(None, self.mounts.remove_anonymous, rec)
        self.locks.pop(rec.id, None)
        self.backoff.pop(rec.id, None)
        self.started_at.pop(rec.id, None)
        self._drop_pending_attach(rec.id)
        self.events.emit("container", "destroy", rec.id, self._attrs(rec))
        for fut in self.exit_waiters.pop(rec.id, []):
            if not fut.done():
                fut.set_result(rec.state.exit_code)
        for fut in self.removed_waiters.pop(rec.id, []):
            if not fut.done():
                fut.set_result(rec.state.exit_code)

    # misc ---------------------------------------------------------------------------------------
    async def _runtime(self, rec: ContainerRecord, args: list[str]) -> str:
        reply = await self.monitor.request({"op": "runtime", "runtime": self.runtime_argv(rec), "args": args})
        return str(reply.get("stdout", ""))

    async def pause(self, ref: str) -> None:
        rec = self.get(ref)
        async with self.lock(rec.id):
            if rec.status is Status.PAUSED:
                raise errors.Conflict(f"Container {rec.id} is already paused")
            if rec.status is not Status.RUNNING:
                raise errors.Conflict(f"Container {rec.id} is not running")
            await self._runtime(rec, ["pause", rec.id])
            rec.move(Status.PAUSED)
            self.store.save(rec)
        self.events.emit("container", "pause", rec.id, self._attrs(rec))

    async def unpause(self, ref: str) -> None:
        rec = self.get(ref)
        async with self.lock(rec.id):
            if rec.status is not Status.PAUSED:
                raise errors.Conflict(f"Container {rec.id} is not paused")
            await self._runtime(rec, ["resume", rec.id])
            rec.move(Status.RUNNING)
            self.store.save(rec)
        self.events.emit("container", "unpause", rec.id, self._attrs(rec))

    async def rename(self, ref: str, new: str) -> None:
        rec = self.get(ref)
        new = names.validate(new)
        if new == rec.name:
            raise errors.InvalidArgument("Renaming a container with the same name as its current name")
        if new in self.names:
            # moby wraps the name reservation's error: "Error when allocating new name: Conflict. ..."
            raise errors.Conflict(f'Error when allocating new name: Conflict. The container name "/{new}" is '
                                  f'already in use by container "{self.names[new]}". You have to remove (or '
                                  'rename) that container to be able to reuse that name.')
        old = rec.name
        self.names.pop(old, None)
        self.names[new] = rec.id
        rec.name = new
        self.store.save(rec)
        self.events.emit("container", "rename", rec.id, {**self._attrs(rec), "oldName": "/" + old})

    async def resize(self, ref: str, h: int, w: int) -> None:
        rec = self.get(ref)
        if rec.status not in (Status.RUNNING, Status.PAUSED):
            raise errors.Conflict(f"Container {rec.id} is not running")
        with contextlib.suppress(errors.Conflict):
            await self.monitor.request({"op": "resize", "id": rec.id, "h": h, "w": w})

    async def top(self, ref: str, ps_args: str) -> dict[str, Any]:
        rec = self.get(ref)
        if rec.status not in (Status.RUNNING, Status.PAUSED):
            raise errors.Conflict(f"Container {rec.id} is not running")
        out = await self._runtime(rec, ["ps", "--format", "json", rec.id])
        pids = set(json.loads(out or "[]") or [])
        proc = await asyncio.create_subprocess_exec(
            "ps", *(ps_args.split() if ps_args else ["-ef"]), stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        stdout, stderr = await proc.communicate()
        if proc.returncode != 0:
            raise errors.Internal(f"ps: {stderr.decode().strip()}")
        lines = stdout.decode().splitlines()
        titles = lines[0].split()
        try:
            pid_col = titles.index("PID")
        except ValueError:
            raise errors.InvalidArgument("Couldn't find PID field in ps output") from None
        rows = []
        for line in lines[1:]:
            fields = line.split(None, len(titles) - 1)
            if len(fields) > pid_col and fields[pid_col].isdigit() and int(fields[pid_col]) in pids:
                rows.append(fields)
        return {"Titles": titles, "Processes": rows}

    async def update(self, ref: str, body: dict[str, Any]) -> list[str]:
        rec = self.get(ref)
        keys = ("Memory", "MemorySwap", "MemoryReservation", "CpuShares", "NanoCpus", "CpuPeriod",
                "CpuQuota", "CpusetCpus", "CpusetMems", "PidsLimit", "BlkioWeight")
        hc = dict(rec.host_config)
        for k in keys:
            if body.get(k):
                hc[k] = body[k]
        if body.get("RestartPolicy"):
            if hc.get("AutoRemove") and (body["RestartPolicy"].get("Name") or "no") != "no":
                raise errors.InvalidArgument("Restart policy cannot be updated because AutoRemove is "
                                             "enabled for the container")
            hc["RestartPolicy"] = body["RestartPolicy"]
        self._validate_host_config(hc)
        if rec.status in (Status.RUNNING, Status.PAUSED):
            res = oci_spec.resources(hc)
            res.pop("devices", None)
            if os.path.basename(self.cfg.runtime_path(rec.runtime)) == "dockyard-runtime":
                from dockyard.daemon import cgupdate  # our runtime has no `update` command
                cgupdate.apply(rec.state.pid, res)
            else:
                path = self.bundles / rec.id / "update.json"
                write_json(path, res)
                await self._runtime(rec, ["update", "--resources", str(path), rec.id])
        rec.host_config = hc
        self.store.save(rec)
        self.events.emit("container", "update", rec.id, self._attrs(rec))
        return []

    def _attrs(self, rec: ContainerRecord) -> dict[str, str]:
        attrs = {"image": rec.image, "name": rec.name}
        attrs.update(rec.config.get("Labels") or {})
        return attrs

    async def shutdown(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        with contextlib.suppress(Exception):
            await self.monitor.request({"op": "shutdown", "if_idle": True})

    async def network_connect(self, ref: str, network_id: str, ep_cfg: dict[str, Any]) -> None:
        rec = self.get(ref)
        async with self.lock(rec.id):
            await self.networking.connect(rec, network_id, ep_cfg)  # emits the network event
            self.store.save(rec)

    async def network_disconnect(self, ref: str, network_id: str, force: bool) -> None:
        rec = self.get(ref)
        async with self.lock(rec.id):
            await self.networking.disconnect(rec, network_id)  # emits the network event
            self.store.save(rec)

    # exec ---------------------------------------------------------------------------------------
    def exec_create(self, ref: str, body: dict[str, Any]) -> str:
        rec = self.get(ref)
        if rec.status is Status.PAUSED:
            raise errors.Conflict(f"Container {rec.id} is paused, unpause the container before exec")
        if rec.status is not Status.RUNNING:
            raise errors.Conflict(f"Container {rec.id} is not running")
        if not body.get("Cmd"):
            raise errors.InvalidArgument("No exec command specified")
        eid = secrets.token_hex(32)
        self.execs[eid] = ExecRecord(eid, rec.id, dict(body))
        rec.exec_ids.append(eid)
        self.events.emit("container", f"exec_create: {' '.join(body['Cmd'])}", rec.id, self._attrs(rec))
        return eid

    def exec_get(self, eid: str) -> ExecRecord:
        ex = self.execs.get(eid)
        if ex is None:
            raise errors.NotFound(f"No such exec instance: {eid}")
        return ex

    def exec_check(self, eid: str) -> tuple[ExecRecord, ContainerRecord]:
        ex = self.exec_get(eid)
        if ex.started:
            raise errors.Conflict(f"Error: Exec command {eid} has already run")
        rec = self.get(ex.container_id)
        if rec.status is not Status.RUNNING:
            raise errors.Conflict(f"Container {rec.id} is not running")
        return ex, rec

    async def exec_open(self, eid: str, detach: bool, tty: bool | None) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        ex, rec = self.exec_check(eid)
        cfg = ex.config  # its Tty (from create) decides the terminal; ``tty`` (the start's) does not
        bundle = self.bundles / rec.id
        spec = json.loads((bundle / "config.json").read_text())
        proc = oci_spec.exec_process(spec, bundle / "rootfs", cfg)
        pfile = bundle / f"exec-{eid}.json"
        write_json(pfile, proc)
        ex.started = True
        msg = {"op": "exec", "id": eid, "container_id": rec.id, "bundle": str(bundle),
               "process": str(pfile), "runtime": self.runtime_argv(rec), "tty": bool(cfg.get("Tty")),
               "stdin": bool(cfg.get("AttachStdin")), "stdin_once": True, "detach": detach,
               "stdout": True, "stderr": True}
        size = cfg.get("ConsoleSize")
        if isinstance(size, list) and len(size) == 2:
            msg["console_size"] = [int(size[0] or 0), int(size[1] or 0)]
        try:
            reader, writer, reply = await self.monitor.open_stream(msg)
        except RuntimeFailure as e:
            # dockerd records 126 for any exec that could not start (not found included: unlike
            # a container's start, its exec path does not map "not found" to 127)
            ex.exit_code = 126
            ex.done.set()
            raise errors.InvalidArgument(f"OCI runtime exec failed: {e}: unknown") from None
        finally:
            with contextlib.suppress(OSError):
                pfile.unlink()
        ex.pid = int(reply["pid"])
        ex.running = True
        if ex.pending_size is not None:
            with contextlib.suppress(errors.Conflict, errors.NotFound):
                await self.monitor.request({"op": "resize", "id": ex.id, "h": ex.pending_size[0],
                                            "w": ex.pending_size[1]})
        self.events.emit("container", f"exec_start: {' '.join(cfg['Cmd'])}", rec.id, self._attrs(rec))
        if detach:
            writer.close()
            return None
        return reader, writer

    def _exec_exited(self, eid: str, code: int) -> None:
        ex = self.execs.get(eid)
        if ex is None:
            return
        ex.running = False
        ex.exit_code = code
        ex.done.set()
        rec = self.containers.get(ex.container_id)
        if rec is not None:
            self.events.emit("container", "exec_die", rec.id, {**self._attrs(rec), "execID": eid, "exitCode": str(code)})

    async def exec_resize(self, eid: str, h: int, w: int) -> None:
        ex = self.exec_get(eid)
        if not ex.running:
            ex.pending_size = (h, w)
            if not ex.started or ex.pid == 0:
                return
        with contextlib.suppress(errors.Conflict, errors.NotFound):
            await self.monitor.request({"op": "resize", "id": ex.id, "h": h, "w": w})


# dockerd's built-in log drivers (etwlogs is Windows-only); any other name is refused at create,
# as dockerd refuses a driver no plugin provides. Only json-file and local keep logs here.
LOG_DRIVERS = frozenset({"json-file", "local", "none", "syslog", "journald", "gelf", "fluentd", "awslogs",
                         "splunk", "gcplogs", "logentries"})


def merge_config(body: dict[str, Any], image_cfg: dict[str, Any]) -> dict[str, Any]:
    """Docker's merge of a create request's Config with the image's config."""
    keys = ("Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr",
            "ExposedPorts", "Tty", "OpenStdin", "StdinOnce", "Env", "Cmd", "Healthcheck", "ArgsEscaped",
            "Image", "Volumes", "WorkingDir", "Entrypoint", "NetworkDisabled", "MacAddress", "OnBuild",
            "Labels", "StopSignal", "StopTimeout", "Shell")
    cfg: dict[str, Any] = {k: body.get(k) for k in keys}
    cfg["Env"] = oci_spec.merge_env(image_cfg.get("Env"), body.get("Env"))
    # dockerd keeps a bare "NAME" of the request in Config.Env (docker-py sends {"Foo": None} so);
    # the process never sees it: merge_env drops it again when the spec's env is made
    cfg["Env"] += [e for e in body.get("Env") or [] if "=" not in e and e not in cfg["Env"]]
    if not body.get("Entrypoint") and body.get("Entrypoint") != [""]:
        if body.get("Entrypoint") is None:
            cfg["Entrypoint"] = image_cfg.get("Entrypoint")
            if not body.get("Cmd"):
                cfg["Cmd"] = image_cfg.get("Cmd")
    if body.get("Entrypoint") == [""]:
        cfg["Entrypoint"] = None
    for k in ("WorkingDir", "User", "StopSignal"):
        if not cfg.get(k):
            cfg[k] = image_cfg.get(k) or ("" if k != "StopSignal" else None)
    if cfg.get("StopSignal") is None:
        cfg.pop("StopSignal")
    labels = dict(image_cfg.get("Labels") or {})
    labels.update(body.get("Labels") or {})
    cfg["Labels"] = labels
    if not cfg.get("ExposedPorts") and image_cfg.get("ExposedPorts"):
        cfg["ExposedPorts"] = image_cfg["ExposedPorts"]
    if not cfg.get("Volumes") and image_cfg.get("Volumes"):
        cfg["Volumes"] = image_cfg["Volumes"]
    if not cfg.get("Healthcheck") and image_cfg.get("Healthcheck"):
        cfg["Healthcheck"] = image_cfg["Healthcheck"]
    cfg["Image"] = body.get("Image")
    return cfg


def _cpu_list(text: str) -> set[int] | None:
    """``0-2,4`` -> {0, 1, 2, 4}; None if malformed (cpuset's list format)."""
    out: set[int] = set()
    for part in str(text).split(","):
        lo, dash, hi = part.strip().partition("-")
        if not lo.isdigit() or (dash and not hi.isdigit()):
            return None
        first, last = int(lo), int(hi) if dash else int(lo)
        if last < first:
            return None
        out.update(range(first, last + 1))
    return out


def _available(kind: str) -> str:
    """The host's cpuset (``cpus``/``mems``), as the kernel lists it; "" if unknown."""
    for path in (f"/sys/fs/cgroup/cpuset/cpuset.{kind}", f"/sys/fs/cgroup/cpuset.{kind}.effective"):
        with contextlib.suppress(OSError):
            return Path(path).read_text().strip()
    return ""


def hc_ipc(rec: ContainerRecord) -> str:
    return str(rec.host_config.get("IpcMode") or "private")


def _ready() -> asyncio.Future[None]:
    fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    fut.set_result(None)
    return fut


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


__all__ = ["ContainerService", "ExecRecord", "merge_config", "parse_signal", "ZERO_TIME"]
