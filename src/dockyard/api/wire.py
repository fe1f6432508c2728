"""Domain records -> Engine API JSON (PascalCase wire shapes of engine-api-v1.50.yaml)."""

from __future__ import annotations

import calendar
import time
from typing import Any

from dockyard.daemon.oci_spec import MASKED_PATHS, READONLY_PATHS
from dockyard.daemon.record import ZERO_TIME, ContainerRecord
from dockyard.daemon.state import Status
from dockyard.units import human_duration


def _epoch(ts: str) -> int:
    if not ts or ts.startswith("0001"):
        return 0
    main = ts.split(".")[0].rstrip("Z")
    try:
        return calendar.timegm(time.strptime(main[:19], "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return 0


epoch = _epoch  # RFC 3339 -> epoch seconds (0 for the zero time), for the routes' filters


def status_text(rec: ContainerRecord) -> str:
    st = rec.state
    now = time.time()
    if st.status is Status.RUNNING:
        health = (st.health or {}).get("Status")
        suffix = f" (health: {health})" if health == "starting" else f" ({health})" if health else ""
        return f"Up {human_duration(now - _epoch(st.started_at))}{suffix}"
    if st.status is Status.PAUSED:
        return f"Up {human_duration(now - _epoch(st.started_at))} (Paused)"
    if st.status is Status.RESTARTING:
        return f"Restarting ({st.exit_code}) {human_duration(now - _epoch(st.finished_at))} ago"
    if st.status is Status.EXITED:
        if not rec.has_been_started and st.finished_at == ZERO_TIME:
            return "Created"
        return f"Exited ({st.exit_code}) {human_duration(now - _epoch(st.finished_at))} ago"
    if st.status is Status.REMOVING:
        return "Removal In Progress"
    if st.status is Status.DEAD:
        return "Dead"
    return "Created"


def _network_settings(rec: ContainerRecord) -> dict[str, Any]:
    """``NetworkSettings.Networks``: the live endpoints of a running container; for a stopped
    one the networks its next start attaches (as docker shows them: no address yet)."""
    from dockyard.daemon.networking import desired_networks
    mode = rec.host_config.get("NetworkMode") or "default"
    blank = {"IPAMConfig": None, "Links": None, "Aliases": None, "MacAddress": "", "NetworkID": "",
             "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "",
             "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DriverOpts": None, "DNSNames": None}
    eps = rec.network_settings.get("Endpoints") or []
    wanted = desired_networks(rec)
    if not eps:
        if mode in ("host", "none"):
            return {"Networks": {mode: blank}}
        return {"Networks": {name: {**blank, "NetworkID": cfg.get("NetworkID", ""),
                                    "IPAMConfig": cfg.get("IPAMConfig") or None,
                                    "Aliases": cfg.get("Aliases") or None,
                                    "Links": cfg.get("Links") or None,
                                    "DriverOpts": cfg.get("DriverOpts") or None,
                                    "MacAddress": cfg.get("MacAddress") or ""}
                             for name, cfg in wanted.items()}}
    user = {e["name"]: e for e in eps}
    return {"Networks": {e["name"]: {**blank, "NetworkID": e["network"], "EndpointID": e["endpoint"],
                                     "Gateway": e["gateway"], "IPAddress": e["ip"],
                                     "IPPrefixLen": e["prefixlen"], "MacAddress": e["mac"],
                                     "IPAMConfig": (wanted.get(name) or {}).get("IPAMConfig") or None,
                                     # as requested (create or connect): dockerd shows them back
                                     "Links": (wanted.get(name) or {}).get("Links") or None,
                                     "DriverOpts": (wanted.get(name) or {}).get("DriverOpts") or None,
                                     "Aliases": e["aliases"] or None,
                                     "DNSNames": list(dict.fromkeys([rec.name, *e["aliases"], rec.id[:12]]))}
                         for name, e in user.items()}}


def _default_bridge_fields(rec: ContainerRecord) -> dict[str, Any]:
    """The deprecated top-level NetworkSettings.IPAddress & co., which docker still fills
    for the default bridge (scripts and docker-py users read ``attrs["NetworkSettings"]
    ["IPAddress"]``)."""
    for e in rec.network_settings.get("Endpoints") or []:
        if e["name"] == "bridge":
            return {"EndpointID": e["endpoint"], "Gateway": e["gateway"], "IPAddress": e["ip"],
                    "IPPrefixLen": e["prefixlen"], "MacAddress": e["mac"]}
    return {}


def _ports(rec: ContainerRecord) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    summary: list[dict[str, Any]] = []
    inspect: dict[str, Any] = {}
    for p in rec.network_settings.get("Ports") or []:
        ip = p.get("IP") or p.get("host_ip") or "0.0.0.0"
        priv = p.get("PrivatePort") or p.get("container_port")
        pub = p.get("PublicPort") or p.get("host_port")
        proto = p.get("Type") or p.get("proto") or "tcp"
        summary.append({"IP": ip, "PrivatePort": priv, "PublicPort": pub, "Type": proto})
        inspect.setdefault(f"{priv}/{proto}", []).append({"HostIp": ip, "HostPort": str(pub)})
    return summary, inspect


def _inspect_ports(rec: ContainerRecord) -> dict[str, Any]:
    """Published ports, plus (while the container is on a network) each exposed port that is
    not published, as null: dockerd's shape, which ``docker port`` and compose's ``port`` read."""
    ports = _ports(rec)[1]
    if rec.network_settings.get("Endpoints") and rec.status in (Status.RUNNING, Status.PAUSED):
        for key in rec.config.get("ExposedPorts") or {}:
            ports.setdefault(key if "/" in key else f"{key}/tcp", None)
    return ports


def container_summary(rec: ContainerRecord, size: bool = False) -> dict[str, Any]:
    cmd = " ".join([rec.path, *rec.args]).strip()
    out: dict[str, Any] = {
        "Id": rec.id, "Names": ["/" + rec.name], "Image": rec.image, "ImageID": rec.image_id,
        "Command": cmd, "Created": _epoch(rec.created), "Ports": _ports(rec)[0],
        "Labels": rec.config.get("Labels") or {}, "State": rec.status.value, "Status": status_text(rec),
        "HostConfig": {"NetworkMode": rec.host_config.get("NetworkMode") or "default"},
        "NetworkSettings": _network_settings(rec), "Mounts": [],
    }
    if size:
        out["SizeRw"] = 0
        out["SizeRootFs"] = 0
    return out


# What dockerd's inspect shows for a field the create request left out (docker-py and so
# docker-compose send only what they set; the docker CLI sends every field): dockerd stores the
# defaulted HostConfig, scripts read e.g. ``attrs["HostConfig"]["ShmSize"]``.
_HOST_CONFIG_DEFAULTS: dict[str, Any] = {
    "AutoRemove": False, "Binds": None, "BlkioDeviceReadBps": None, "BlkioDeviceReadIOps": None,
    "BlkioDeviceWriteBps": None, "BlkioDeviceWriteIOps": None, "BlkioWeight": 0, "BlkioWeightDevice": None,
    "CapAdd": None, "CapDrop": None, "Cgroup": "", "CgroupParent": "", "ConsoleSize": [0, 0],
    "ContainerIDFile": "", "CpuCount": 0, "CpuPercent": 0, "CpuPeriod": 0, "CpuQuota": 0,
    "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "CpuShares": 0, "CpusetCpus": "", "CpusetMems": "",
    "DeviceCgroupRules": None, "DeviceRequests": None, "Devices": None, "Dns": None, "DnsOptions": None,
    "DnsSearch": None, "ExtraHosts": None, "GroupAdd": None, "IOMaximumBandwidth": 0, "IOMaximumIOps": 0,
    "IpcMode": "private", "Isolation": "", "Links": None, "Memory": 0, "MemoryReservation": 0,
    "MemorySwappiness": None, "NanoCpus": 0, "OomKillDisable": False, "OomScoreAdj": 0, "PidMode": "",
    "PidsLimit": None, "PortBindings": {}, "Privileged": False, "PublishAllPorts": False,
    "ReadonlyRootfs": False, "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}, "SecurityOpt": None,
    "UTSMode": "", "Ulimits": None, "UsernsMode": "", "VolumeDriver": "", "VolumesFrom": None,
}


def _host_config(stored: dict[str, Any]) -> dict[str, Any]:
    hc = {**_HOST_CONFIG_DEFAULTS, **stored}
    hc.pop("ExtraMounts", None)
    if not hc.get("ShmSize"):
        hc["ShmSize"] = 64 << 20  # what /dev/shm gets
    if not hc.get("MemorySwap") and hc.get("Memory"):
        hc["MemorySwap"] = 2 * hc["Memory"]  # the limit the cgroup gets, as dockerd records it
    hc.setdefault("MemorySwap", 0)
    if not hc.get("Privileged"):
        if hc.get("MaskedPaths") is None:
            hc["MaskedPaths"] = list(MASKED_PATHS)
        if hc.get("ReadonlyPaths") is None:
            hc["ReadonlyPaths"] = list(READONLY_PATHS)
    return hc


# Config fields dockerd leaves out when unset (``json:",omitempty"``) and those it always shows
# as a zero value: docker-py (so compose) sends every key, null where unset.
_CONFIG_OMITEMPTY = ("ExposedPorts", "Healthcheck", "ArgsEscaped", "NetworkDisabled", "MacAddress",
                     "StopSignal", "Shell")
_CONFIG_ZERO: dict[str, Any] = {"Domainname": "", "User": "", "WorkingDir": "", "AttachStdin": False,
                                "AttachStdout": False, "AttachStderr": False, "Tty": False,
                                "OpenStdin": False, "StdinOnce": False}


def _config(rec: ContainerRecord) -> dict[str, Any]:
    cfg = {**rec.config, "Hostname": rec.config.get("Hostname") or rec.id[:12]}
    for k in _CONFIG_OMITEMPTY:
        if k in cfg and not cfg[k]:
            del cfg[k]
    if "StopTimeout" in cfg and cfg["StopTimeout"] is None:  # a pointer: 0 is shown
        del cfg["StopTimeout"]
    for k, zero in _CONFIG_ZERO.items():
        if cfg.get(k) is None:
            cfg[k] = zero
    return cfg


def container_inspect(rec: ContainerRecord, log_path: str, data_dir: str) -> dict[str, Any]:
    st = rec.state
    health = st.health
    state: dict[str, Any] = {
        "Status": st.status.value, "Running": st.status in (Status.RUNNING, Status.PAUSED),
        "Paused": st.status is Status.PAUSED, "Restarting": st.status is Status.RESTARTING,
        "OOMKilled": st.oom_killed, "Dead": st.status is Status.DEAD, "Pid": st.pid,
        "ExitCode": st.exit_code, "Error": st.error, "StartedAt": st.started_at,
        "FinishedAt": st.finished_at,
    }
    if health is not None:
        state["Health"] = health
    hc = _host_config(rec.host_config)
    return {
        "Id": rec.id, "Created": rec.created, "Path": rec.path, "Args": rec.args, "State": state,
        "Image": rec.image_id, "ResolvConfPath": f"{data_dir}/resolv.conf",
        "HostnamePath": f"{data_dir}/hostname", "HostsPath": f"{data_dir}/hosts",
        "LogPath": log_path, "Name": "/" + rec.name, "RestartCount": rec.restart_count,
        "Driver": "overlay2", "Platform": "linux", "MountLabel": "", "ProcessLabel": "",
        "AppArmorProfile": "", "ExecIDs": rec.exec_ids or None, "HostConfig": hc,
        "GraphDriver": {"Name": "overlay2", "Data": None}, "Mounts": [],
        "Config": _config(rec),
        "NetworkSettings": {"Bridge": "", "SandboxID": "", "SandboxKey": rec.network_settings.get("SandboxKey", ""),
                            "Ports": _inspect_ports(rec),
                            "HairpinMode": False, "LinkLocalIPv6Address": "",
                            "LinkLocalIPv6PrefixLen": 0, "SecondaryIPAddresses": None,
                            "SecondaryIPv6Addresses": None, "EndpointID": "", "Gateway": "",
                            "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPAddress": "",
                            "IPPrefixLen": 0, "IPv6Gateway": "", "MacAddress": "",
                            **_default_bridge_fields(rec), **_network_settings(rec)},
    }


def image_summary(img: Any) -> dict[str, Any]:
    cfg = img.container_config
    return {
        "Id": img.id, "ParentId": img.parent or "", "RepoTags": list(img.repo_tags),
        "RepoDigests": list(img.repo_digests), "Created": _epoch(img.created) if img.created else 0,
        "Size": img.size, "SharedSize": -1, "VirtualSize": img.size,
        "Labels": cfg.get("Labels") or {}, "Containers": -1,
    }


def image_inspect(img: Any) -> dict[str, Any]:
    cfg = img.config
    return {
        "Id": img.id, "RepoTags": list(img.repo_tags), "RepoDigests": list(img.repo_digests),
        "Parent": img.parent or "", "Comment": (cfg.get("history") or [{}])[-1].get("comment", "")
        if cfg.get("history") else "",
        "Created": img.created or "", "DockerVersion": "", "Author": cfg.get("author", ""),
        "Config": img.container_config, "Architecture": img.architecture, "Os": img.os,
        # the committed container's id (docker commit); versions.image_inspect drops it from 1.45
        "Container": str(cfg.get("container") or ""),
        "Size": img.size, "VirtualSize": img.size,
        "GraphDriver": {"Name": "overlay2", "Data": None},
        "RootFS": {"Type": "layers", "Layers": list(img.diff_ids)},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
    }
