"""System routes: /_ping, /version, /info, /events, /system/df."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from dockyard.api import versions, wire
from dockyard.api.common import api_version, experimental, qbool, reply, services
from dockyard.daemon import events as ev_filters
from dockyard.daemon import filters
from dockyard.daemon.state import Status
from dockyard.errors import InvalidArgument

VERSION = "0.1.0"


async def ping(request: web.Request) -> web.StreamResponse:
    headers = {"Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache",
               "Builder-Version": "1"}
    if request.method == "HEAD":
        return web.Response(status=200, headers=headers, content_type="text/plain")
    return web.Response(status=200, text="OK", headers=headers, content_type="text/plain")


async def version(request: web.Request) -> web.StreamResponse:
    uname = os.uname()
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(uname.machine, uname.machine)
    details = {"ApiVersion": "1.50", "Arch": arch, "BuildTime": "", "Experimental": str(experimental(request)).lower(),
               "GitCommit": "", "GoVersion": f"python{platform.python_version()}",
               "KernelVersion": uname.release, "MinAPIVersion": "1.24", "Os": "linux"}
    return reply({
        "Platform": {"Name": "Dockyard"},
        "Components": [{"Name": "Engine", "Version": VERSION, "Details": details}],
        "Version": VERSION, "ApiVersion": "1.50", "MinAPIVersion": "1.24", "GitCommit": "",
        "GoVersion": details["GoVersion"], "Os": "linux", "Arch": arch, "KernelVersion": uname.release,
        "BuildTime": "", **({"Experimental": True} if experimental(request) else {}),
    })


def _cgroup_version() -> str:
    return "2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "1"


async def info(request: web.Request) -> web.StreamResponse:
    s = services(request)
    recs = list(s.containers.containers.values())
    running = sum(1 for r in recs if r.status is Status.RUNNING)
    paused = sum(1 for r in recs if r.status is Status.PAUSED)
    uname = os.uname()
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        mem = 0
    images = s.images.list()
    return reply({
        "ID": s.daemon_id, "Containers": len(recs), "ContainersRunning": running,
        "ContainersPaused": paused, "ContainersStopped": len(recs) - running - paused,
        "Images": len(images), "Driver": "overlay2", "DriverStatus": [["Backing Filesystem", "extfs"]],
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "none"],
                    "Authorization": None, "Log": ["json-file"]},
        "MemoryLimit": True, "SwapLimit": True, "KernelMemory": False, "CpuCfsPeriod": True,
        "CpuCfsQuota": True, "CPUShares": True, "CPUSet": True, "PidsLimit": True, "IPv4Forwarding": True,
        "BridgeNfIptables": False, "BridgeNfIp6tables": False, "Debug": s.cfg.log_level == "debug",
        "NFd": len(os.listdir("/proc/self/fd")), "OomKillDisable": True,
        "NGoroutines": len(asyncio.all_tasks()), "SystemTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "LoggingDriver": "json-file", "CgroupDriver": "cgroupfs", "CgroupVersion": _cgroup_version(),
        "NEventsListener": len(s.events.subscribers), "KernelVersion": uname.release,
        "OperatingSystem": _os_name(), "OSVersion": "", "OSType": "linux",
        "Architecture": uname.machine, "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {"AllowNondistributableArtifactsCIDRs": [], "AllowNondistributableArtifactsHostnames": [],
                           "InsecureRegistryCIDRs": ["127.0.0.0/8"], "IndexConfigs": {},
                           "Mirrors": list(s.cfg.registry_mirrors)},
        "NCPU": os.cpu_count() or 1, "MemTotal": mem, "GenericResources": None,
        "DockerRootDir": str(s.cfg.data_root), "HttpProxy": "", "HttpsProxy": "", "NoProxy": "",
        "Name": uname.nodename, "Labels": [], "ExperimentalBuild": experimental(request), "ServerVersion": VERSION,
        "Runtimes": {name: {"path": path} for name, path in s.cfg.runtimes.items()},
        "DefaultRuntime": s.cfg.default_runtime, "Swarm": {"LocalNodeState": "inactive", "NodeID": "",
                                                           "NodeAddr": "", "ControlAvailable": False,
                                                           "Error": "", "RemoteManagers": None},
        "LiveRestoreEnabled": True, "Isolation": "", "InitBinary": "docker-init",
        "ContainerdCommit": {"ID": ""}, "RuncCommit": {"ID": ""}, "InitCommit": {"ID": ""},
        "SecurityOptions": ["name=seccomp,profile=builtin", "name=cgroupns"],
        "Warnings": None,
    })


def _os_name() -> str:
    try:
        for line in open("/etc/os-release"):
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


def _parse_ts(v: str | None) -> float:
    if not v:
        return 0.0
    try:
        return float(v)
    except ValueError:
        from dockyard.daemon.logs import parse_time
        try:
            return parse_time(v)
        except (ValueError, IndexError):
            raise InvalidArgument(f"invalid timestamp: {v!r}") from None


async def events(request: web.Request) -> web.StreamResponse:
    s = services(request)
    flt = filters.parse(request.query.get("filters"))
    since = _parse_ts(request.query.get("since"))
    until = _parse_ts(request.query.get("until"))
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    q = s.events.subscribe()
    replayed_until = 0  # events already sent from the history may be queued too: skip them
    try:
        if since:
            for e in list(s.events.history):
                if e["timeNano"] / 1e9 >= since and (not until or e["timeNano"] / 1e9 <= until) \
                        and ev_filters.matches(e, flt):
                    await resp.write(json.dumps(e).encode() + b"\n")
                replayed_until = e["timeNano"]
        while True:
            timeout = None
            if until:
                timeout = until - time.time()
                if timeout <= 0:
                    break
            try:
                e = await asyncio.wait_for(q.get(), timeout)
            except TimeoutError:
                break
            if e["timeNano"] > replayed_until and ev_filters.matches(e, flt):
                await resp.write(json.dumps(e).encode() + b"\n")
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        s.events.unsubscribe(q)
    return resp


async def system_df(request: web.Request) -> web.StreamResponse:
    s = services(request)
    imgs = [wire.image_summary(i) for i in s.images.list()]
    from dockyard.api.containers import sizes
    from dockyard.api.volumes import summary_mounts
    cts = [{**wire.container_summary(r), "Mounts": summary_mounts(s.containers, r), **await sizes(s, r)}
           for r in list(s.containers.containers.values())]
    loop = asyncio.get_running_loop()
    volumes: list[Any] = []
    cache: list[Any] = []
    if getattr(s, "volumes", None) is not None:
        from dockyard.api.volumes import df_volumes
        volumes = await loop.run_in_executor(None, df_volumes, s.volumes)
    try:
        from dockyard.api.build import cache_records
        cache = await loop.run_in_executor(None, cache_records, s)
    except Exception:  # noqa: BLE001 - the builder is optional for df
        cache = []
    return reply(versions.system_df({"LayersSize": sum(i["Size"] for i in imgs), "Images": imgs,
                                     "Containers": cts, "Volumes": volumes, "BuildCache": cache},
                                    api_version(request)))


def routes(add: Callable[..., None]) -> None:
    add("GET", "/_ping", ping)
    add("HEAD", "/_ping", ping)
    add("GET", "/version", version)
    add("GET", "/info", info)
    add("GET", "/events", events)
    add("GET", "/system/df", system_df)
    _ = qbool
