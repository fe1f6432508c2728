"""Network and volume verbs: ``network ls|create|rm|inspect|prune|connect|disconnect`` and
``volume ls|create|rm|inspect|prune`` with docker's flags and table formats."""

from __future__ import annotations

import sys

from dockyard.cli.common import (
    Globals,
    UsageError,
    confirm,
    each,
    filters,
    human_size,
    out,
    short_id,
)
from dockyard.cli.containers import help_requested, inspect, need
from dockyard.cli.flags import parse

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

NET_DEFAULT = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
NET_HEADERS = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "IPv6": "IPV6",
               "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT"}


class NetworkRow:
    def __init__(self, n: dict[str, Any], trunc: bool) -> None:
        self.n, self.trunc = n, trunc
        self.Name, self.Driver, self.Scope = n.get("Name", ""), n.get("Driver", ""), n.get("Scope", "")
        self.IPv6 = "true" if n.get("EnableIPv6") else "false"
        self.Internal = "true" if n.get("Internal") else "false"
        self.CreatedAt = n.get("Created", "")

    @property
    def ID(self) -> str:
        return short_id(self.n["Id"]) if self.trunc else self.n["Id"]

    @property
    def Labels(self) -> str:
        return ",".join(f"{k}={v}" for k, v in (self.n.get("Labels") or {}).items())

    def Label(self, name: str) -> str:
        return (self.n.get("Labels") or {}).get(name, "")

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("CreatedAt", "Driver", "ID", "IPv6", "Internal", "Labels", "Name",
                                              "Scope")}


def network(g: Globals, argv: list[str]) -> int:
    sub = argv[0] if argv else ""
    rest = argv[1:]
    if sub in ("ls", "list"):
        from dockyard.cli.template import render_rows
        o, _ = parse(rest, "q|quiet no-trunc f|filter* format=")
        help_requested(o)
        rows = [NetworkRow(n, not o["no_trunc"]) for n in
                g.client.json("GET", "/networks", {"filters": filters(o["filter"])})]
        rows.sort(key=lambda r: r.Name)
        fmt = "{{.ID}}" if o["quiet"] and not o["format"] else o["format"]
        sys.stdout.write(render_rows(fmt, rows, NET_DEFAULT, NET_HEADERS))
        return 0
    if sub == "create":
        o, args = parse(rest, "d|driver= subnet* gateway* ip-range* internal attachable label* o|opt* ipv6 "
                              "ipam-driver= scope= aux-address* config-from= config-only ingress")
        help_requested(o)
        need(args, "network create", exactly=1)
        configs = []
        for i, s in enumerate(o["subnet"]):
            cfg = {"Subnet": s}
            if i < len(o["gateway"]):
                cfg["Gateway"] = o["gateway"][i]
            if i < len(o["ip_range"]):
                cfg["IPRange"] = o["ip_range"][i]
            configs.append(cfg)
        body: dict[str, Any] = {
            "Name": args[0], "Driver": o["driver"] or "bridge", "Internal": o["internal"],
            "Attachable": o["attachable"], "EnableIPv6": o["ipv6"] or None,
            "Labels": dict(x.split("=", 1) if "=" in x else (x, "") for x in o["label"]),
            "Options": dict(x.split("=", 1) if "=" in x else (x, "") for x in o["opt"]),
            "IPAM": {"Driver": o["ipam_driver"] or "default", "Config": configs}}
        out(g.client.json("POST", "/networks/create", None, body)["Id"])
        return 0
    if sub in ("rm", "remove"):
        o, args = parse(rest, "f|force")
        help_requested(o)
        need(args, "network rm")
        return each(g, args, lambda c, n: c.request("DELETE", f"/networks/{n}").read())
    if sub == "inspect":
        return inspect(g, rest, "network")
    if sub == "prune":
        o, _ = parse(rest, "f|force filter*")
        help_requested(o)
        if not confirm("WARNING! This will remove all custom networks not used by at least one container.\n"
                       "Are you sure you want to continue?", o["force"]):
            return 0
        res = g.client.json("POST", "/networks/prune", {"filters": filters(o["filter"])}) or {}
        if res.get("NetworksDeleted"):
            out("Deleted Networks:")
            for n in res["NetworksDeleted"]:
                out(n)
        return 0
    if sub == "connect":
        o, args = parse(rest, "alias* ip= ip6= link* link-local-ip* driver-opt*")
        help_requested(o)
        need(args, "network connect", exactly=2)
        ipam = {k: v for k, v in (("IPv4Address", o["ip"]), ("IPv6Address", o["ip6"])) if v}
        g.client.request("POST", f"/networks/{args[0]}/connect", body={
            "Container": args[1], "EndpointConfig": {"Aliases": o["alias"] or None, "IPAMConfig": ipam or None,
                                                     "Links": o["link"] or None}}).read()
        return 0
    if sub == "disconnect":
        o, args = parse(rest, "f|force")
        help_requested(o)
        need(args, "network disconnect", exactly=2)
        g.client.request("POST", f"/networks/{args[0]}/disconnect",
                         body={"Container": args[1], "Force": o["force"]}).read()
        return 0
    from dockyard.cli.main import Help
    raise Help("network")


VOL_DEFAULT = "table {{.Driver}}\t{{.Name}}"
VOL_HEADERS = {"Driver": "DRIVER", "Name": "VOLUME NAME", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT",
               "Labels": "LABELS", "Links": "LINKS", "Size": "SIZE", "Availability": "AVAILABILITY",
               "Group": "GROUP", "Status": "STATUS"}


class VolumeRow:
    def __init__(self, v: dict[str, Any]) -> None:
        self.v = v
        self.Driver, self.Name = v.get("Driver", ""), v.get("Name", "")
        self.Scope, self.Mountpoint = v.get("Scope", ""), v.get("Mountpoint", "")

    @property
    def Labels(self) -> str:
        return ",".join(f"{k}={v}" for k, v in (self.v.get("Labels") or {}).items())

    def Label(self, name: str) -> str:
        return (self.v.get("Labels") or {}).get(name, "")

    @property
    def Links(self) -> str:
        u = self.v.get("UsageData") or {}
        return str(u["RefCount"]) if u.get("RefCount", -1) >= 0 else "N/A"

    @property
    def Size(self) -> str:
        u = self.v.get("UsageData") or {}
        return human_size(u["Size"]) if u.get("Size", -1) >= 0 else "N/A"

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("Driver", "Labels", "Links", "Mountpoint", "Name", "Scope", "Size")}


def volume(g: Globals, argv: list[str]) -> int:
    sub = argv[0] if argv else ""
    rest = argv[1:]
    if sub in ("ls", "list"):
        from dockyard.cli.template import render_rows
        o, _ = parse(rest, "q|quiet f|filter* format= cluster")
        help_requested(o)
        vols = (g.client.json("GET", "/volumes", {"filters": filters(o["filter"])}) or {}).get("Volumes") or []
        rows = sorted((VolumeRow(v) for v in vols), key=lambda r: r.Name)
        fmt = "{{.Name}}" if o["quiet"] and not o["format"] else o["format"]
        sys.stdout.write(render_rows(fmt, rows, VOL_DEFAULT, VOL_HEADERS))
        return 0
    if sub == "create":
        o, args = parse(rest, "d|driver= label* o|opt* name=")
        help_requested(o)
        if len(args) > 1 or (args and o["name"]):
            raise UsageError("conflicting options: either specify --name or provide positional arg, not both")
        body = {"Name": o["name"] or (args[0] if args else ""), "Driver": o["driver"] or "local",
                "Labels": dict(x.split("=", 1) if "=" in x else (x, "") for x in o["label"]),
                "DriverOpts": dict(x.split("=", 1) if "=" in x else (x, "") for x in o["opt"])}
        out(g.client.json("POST", "/volumes/create", None, body)["Name"])
        return 0
    if sub in ("rm", "remove"):
        o, args = parse(rest, "f|force")
        help_requested(o)
        need(args, "volume rm")
        return each(g, args, lambda c, n: c.request("DELETE", f"/volumes/{n}", {"force": o["force"]}).read())
    if sub == "inspect":
        return inspect(g, rest, "volume")
    if sub == "prune":
        o, _ = parse(rest, "a|all f|force filter*")
        help_requested(o)
        warn = ("WARNING! This will remove all local volumes not used by at least one container."
                if o["all"] else "WARNING! This will remove anonymous local volumes not used by at least one container.")
        if not confirm(warn + "\nAre you sure you want to continue?", o["force"]):
            return 0
        flt = filters(o["filter"]) or {}
        if o["all"]:
            flt["all"] = ["true"]
        res = g.client.json("POST", "/volumes/prune", {"filters": flt or None}) or {}
        if res.get("VolumesDeleted"):
            out("Deleted Volumes:")
            for v in res["VolumesDeleted"]:
                out(v)
            out("")
        out(f"Total reclaimed space: {human_size(res.get('SpaceReclaimed') or 0)}")
        return 0
    from dockyard.cli.main import Help
    raise Help("volume")
