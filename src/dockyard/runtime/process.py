"""The last steps before a container process becomes the user's program (init and exec).

``lookpath(args0, env)`` resolves the command like Go's exec.LookPath against the PATH of
``process.env`` *inside* the container (so call it after pivot_root), raising
``ExecutableNotFound``/``ExecutableNotRunnable`` with runc's wording. ``finalize_and_exec``
applies, in runc's order: rlimits, oom_score_adj, seccomp (early only when no_new_privs is off:
loading a filter then needs CAP_SYS_ADMIN), bounding set, keep-caps, groups/gid/uid, cwd,
capability sets and ambient set, umask, no_new_privs, seccomp, close-on-exec for fds >= 3
(+ preserved fds), execve. It never returns; failures raise for the caller to report.
"""

from __future__ import annotations

import os

from dockyard.runtime.errors import ExecutableNotFound, ExecutableNotRunnable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def env_dict(env: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for e in env or ():
        k, _, v = e.partition("=")
        out[k] = v
    return out


def lookpath(arg0: str, env: dict[str, str]) -> str:
    if "/" in arg0:
        try:
            st = os.stat(arg0)
        except OSError as e:
            raise ExecutableNotFound(
                f'exec: "{arg0}": stat {arg0}: {os.strerror(e.errno or 2).lower()}') from None
        if (st.st_mode & 0o170000) == 0o040000 or not st.st_mode & 0o111:
            raise ExecutableNotRunnable(f'exec: "{arg0}": permission denied')
        return arg0
    for d in env.get("PATH", "").split(":"):
        path = os.path.join(d or ".", arg0)
        try:
            st = os.stat(path)
        except OSError:
            continue
        if (st.st_mode & 0o170000) != 0o040000 and st.st_mode & 0o111:
            return path
    raise ExecutableNotFound(f'exec: "{arg0}": executable file not found in $PATH')


def home_of(uid: int) -> str:
    """The home directory of ``uid`` in /etc/passwd (of the container, after pivot_root)."""
    try:
        with open("/etc/passwd", "rb") as f:
            for line in f:
                parts = line.decode(errors="replace").rstrip("\n").split(":")
                if len(parts) >= 6 and parts[2] == str(uid):
                    return parts[5] or "/"
    except OSError:
        pass
    return "/"


def set_rlimits(rlimits: list[dict] | None) -> None:
    if not rlimits:
        return
    from dockyard.linux import syscalls
    from dockyard.runtime.config import RLIMITS

    for r in rlimits:
        syscalls.setrlimit(RLIMITS.index(r["type"]), r["soft"], r["hard"])


def finalize_and_exec(proc: dict, path: str, seccomp_filter: Any, preserve_fds: int = 0) -> None:
    from dockyard.linux import syscalls as s

    set_rlimits(proc.get("rlimits"))
    if "oomScoreAdj" in proc:
        from dockyard.linux import procfs

        procfs.set_oom_score_adj(proc["oomScoreAdj"])
    nnp = bool(proc.get("noNewPrivileges"))
    if seccomp_filter is not None and not nnp:
        from dockyard.linux import seccomp

        seccomp.load(seccomp_filter)
    caps = proc.get("capabilities")
    if caps is not None:
        from dockyard.linux import caps as capmod

        capmod.drop_bounding(capmod.mask(caps.get("bounding"), "bounding"))
        s.prctl(s.PR_SET_KEEPCAPS, 1)
    user = proc.get("user") or {}
    uid, gid = user.get("uid", 0), user.get("gid", 0)
    os.setgroups(list(user.get("additionalGids") or ()))
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    cwd = proc.get("cwd") or "/"
    try:
        os.chdir(cwd)
    except OSError as e:
        raise OSError(e.errno, f"chdir to cwd ({cwd!r}) set in config.json failed: "
                               f"{e.strerror}") from None
    if caps is not None:
        from dockyard.linux import caps as capmod

        s.prctl(s.PR_SET_KEEPCAPS, 0)
        capmod.apply_sets(capmod.mask(caps.get("effective"), "effective"),
                          capmod.mask(caps.get("permitted"), "permitted"),
                          capmod.mask(caps.get("inheritable"), "inheritable"),
                          capmod.mask(caps.get("ambient"), "ambient"))
    if "umask" in user:
        os.umask(user["umask"])
    if nnp:
        s.prctl(s.PR_SET_NO_NEW_PRIVS, 1)
    if seccomp_filter is not None and nnp:
        from dockyard.linux import seccomp

        seccomp.load(seccomp_filter)
    s.close_range_cloexec(3 + preserve_fds)
    args = proc["args"]
    env = env_dict(proc.get("env"))
    if "HOME" not in env:  # as runc: the user's home from the container's /etc/passwd
        env["HOME"] = home_of(uid)
    try:
        os.execve(path, args, env)
    except OSError as e:
        raise OSError(e.errno, f"exec {path}: {os.strerror(e.errno or 0).lower()}") from None
