"""``ps``: the processes of a container (pids from its cgroup; ``ps`` output filtered)."""

from __future__ import annotations

from dockyard.errors import Conflict
from dockyard.runtime import state


def pids(root: str, cid: str) -> list[int]:
    rec = state.load(root, cid)
    if state.status(root, rec) == "stopped":
        raise Conflict("container not running")
    if not rec.get("cgroup"):
        return [rec["pid"]]
    from dockyard.linux import cgroups

    return cgroups.procs(cgroups.Cgroup.from_dict(rec["cgroup"]))


def ps_table(root: str, cid: str, ps_args: list[str]) -> str:
    """Run the host's ``ps`` (default ``-ef``) and keep the header and the container's rows."""
    import subprocess

    wanted = set(pids(root, cid))
    out = subprocess.run(["ps", *(ps_args or ["-ef"])], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    if not out:
        return ""
    header = out[0].split()
    if "PID" not in header:
        raise Conflict("couldn't find PID field in ps output")
    col = header.index("PID")
    lines = [out[0]]
    for line in out[1:]:
        fields = line.split()
        if len(fields) > col and fields[col].isdigit() and int(fields[col]) in wanted:
            lines.append(line)
    return "\n".join(lines) + "\n"
