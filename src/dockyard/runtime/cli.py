"""``dockyard-runtime``: runc's command line over the library functions of this package.

Thin by design: parse argv (by hand: argparse imports ``re`` and costs milliseconds on every
container start), call one function, map errors to runc's output and exit codes. Every error
exits 1 and is logged as ``time="..." level=error msg="..."`` (or a JSON line with
``--log-format json``) on stderr and in ``--log``. ``run`` and foreground ``exec`` exit with
the container process's status.
"""

from __future__ import annotations

import os
import sys

VERSION = "0.1.0"

# flag spelling -> (key, takes a value, repeatable)
_GLOBAL = {
    "--root": ("root", True, False), "--log": ("log", True, False),
    "--log-format": ("log_format", True, False), "--debug": ("debug", False, False),
    "--systemd-cgroup": ("systemd_cgroup", False, False), "--rootless": ("rootless", True, False),
    "--criu": ("criu", True, False),
    "--version": ("version", False, False), "-v": ("version", False, False),
    "--help": ("help", False, False), "-h": ("help", False, False),
}
_CREATE = {
    "--bundle": ("bundle", True, False), "-b": ("bundle", True, False),
    "--console-socket": ("console_socket", True, False), "--pid-file": ("pid_file", True, False),
    "--no-pivot": ("no_pivot", False, False), "--no-new-keyring": ("no_new_keyring", False, False),
    "--preserve-fds": ("preserve_fds", True, False),
}
_RUN = dict(_CREATE, **{"--detach": ("detach", False, False), "-d": ("detach", False, False),
                        "--keep": ("keep", False, False)})
_EXEC = {
    "--console-socket": ("console_socket", True, False), "--cwd": ("cwd", True, False),
    "--env": ("env", True, True), "-e": ("env", True, True), "--tty": ("tty", False, False),
    "-t": ("tty", False, False), "--user": ("user", True, False), "-u": ("user", True, False),
    "--additional-gids": ("gids", True, True), "-g": ("gids", True, True),
    "--process": ("process", True, False), "-p": ("process", True, False),
    "--detach": ("detach", False, False), "-d": ("detach", False, False),
    "--pid-file": ("pid_file", True, False), "--process-label": ("label", True, False),
    "--apparmor": ("apparmor", True, False), "--no-new-privs": ("nnp", False, False),
    "--cap": ("cap", True, True), "-c": ("cap", True, True),
    "--preserve-fds": ("preserve_fds", True, False), "--cgroup": ("cgroup", True, True),
    "--ignore-paused": ("ignore_paused", False, False),
}
_COMMANDS: dict[str, tuple[dict, int, int]] = {
    # name: (flags, min positional, max positional or -1 for "the rest")
    "spec": ({"--bundle": ("bundle", True, False), "-b": ("bundle", True, False),
              "--rootless": ("rootless", False, False)}, 0, 0),
    "create": (_CREATE, 1, 1),
    "run": (_RUN, 1, 1),
    "start": ({}, 1, 1),
    "state": ({}, 1, 1),
    "kill": ({"--all": ("all", False, False), "-a": ("all", False, False)}, 1, 2),
    "delete": ({"--force": ("force", False, False), "-f": ("force", False, False)}, 1, 1),
    "exec": (_EXEC, 1, -1),
    "list": ({"--format": ("format", True, False), "-f": ("format", True, False),
              "--quiet": ("quiet", False, False), "-q": ("quiet", False, False)}, 0, 0),
    "ps": ({"--format": ("format", True, False), "-f": ("format", True, False)}, 1, -1),
    "pause": ({}, 1, 1),
    "resume": ({}, 1, 1),
    "features": ({}, 0, 0),
}


class UsageError(Exception):
    pass


def _parse(argv: list[str], table: dict, stop_at_positional: bool = True
           ) -> tuple[dict, list[str]]:
    opts: dict = {}
    pos: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            pos.extend(argv[i + 1:])
            break
        if a.startswith("-") and a != "-" and not pos:
            name, eq, val = a.partition("=")
            spec = table.get(name)
            if spec is None:
                raise UsageError(f"flag provided but not defined: {name}")
            key, takes, multi = spec
            if takes:
                if not eq:
                    i += 1
                    if i >= len(argv):
                        raise UsageError(f"flag needs an argument: {name}")
                    val = argv[i]
                if multi:
                    opts.setdefault(key, []).append(val)
                else:
                    opts[key] = val
            else:
                opts[key] = val.lower() not in ("false", "0") if eq else True
        else:
            pos.append(a)
            if stop_at_positional and table is _GLOBAL:
                pos.extend(argv[i + 1:])
                break
        i += 1
    return opts, pos


class _Log:
    def __init__(self, path: str | None, fmt: str) -> None:
        self.path = path
        self.fmt = fmt

    def error(self, msg: str) -> None:
        from dockyard.runtime import state

        t = state.now_rfc3339().split(".")[0].rstrip("Z") + "Z"
        if self.fmt == "json":
            from dockyard.runtime import fastjson

            line = fastjson.dumps({"level": "error", "msg": msg, "time": t})
        else:
            q = msg.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
            line = f'time="{t}" level=error msg="{q}"'
        os.write(2, (line + "\n").encode())
        if self.path:
            try:
                with open(self.path, "a") as f:
                    f.write(line + "\n")
            except OSError:
                pass


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    log = _Log(None, "text")
    cmd = ""
    try:
        gopts, rest = _parse(argv, _GLOBAL)
        log = _Log(gopts.get("log"), gopts.get("log_format", "text"))
        if log.fmt not in ("text", "json"):
            raise UsageError(f"invalid log-format: {log.fmt}")
        if gopts.get("version") or rest[:1] == ["version"]:
            os.write(1, f"dockyard-runtime version {VERSION}\nspec: 1.0.2-dev\n".encode())
            return 0
        if gopts.get("help") or not rest or rest[0] == "help":
            os.write(1, _usage().encode())
            return 0 if rest or gopts.get("help") else 1
        cmd = rest[0]
        if cmd not in _COMMANDS:
            raise UsageError(f"No help topic for '{cmd}'")
        table, lo, hi = _COMMANDS[cmd]
        opts, pos = _parse(rest[1:], table)
        if len(pos) < lo or (hi >= 0 and len(pos) > hi):
            need = f"exactly {lo}" if lo == hi else f"a minimum of {lo}"
            raise UsageError(f'"{cmd}" requires {need} argument(s)')
        root = gopts.get("root") or "/run/dockyard-runtime"
        return _dispatch(cmd, root, opts, pos)
    except UsageError as e:
        log.error(f"dockyard-runtime: {e}")
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # noqa: BLE001 - every error becomes a message and exit 1
        from dockyard.errors import DockyardError
        from dockyard.runtime.init import describe

        msg = str(e) if isinstance(e, DockyardError) else describe(e) if isinstance(
            e, OSError) else f"{type(e).__name__}: {e}"
        if cmd == "exec":  # runc's wording and status for a failed exec
            log.error(f"exec failed: {msg}")
            return 255
        if cmd in ("create", "run"):
            msg = f"dockyard-runtime {cmd} failed: {msg}"
        log.error(msg)
        return 1


def _usage() -> str:
    return ("usage: dockyard-runtime [--root DIR] [--log FILE] [--log-format text|json] "
            "[--debug] COMMAND [OPTIONS] ARGS\n\ncommands: " + " ".join(_COMMANDS) + "\n")


def _dispatch(cmd: str, root: str, o: dict, pos: list[str]) -> int:
    if cmd == "spec":
        from dockyard.runtime.spec import write_spec

        write_spec(o.get("bundle") or ".")
        return 0
    if cmd in ("create", "run"):
        pf = int(o.get("preserve_fds") or 0)
        kw = {"console_socket": o.get("console_socket"), "pid_file": o.get("pid_file"),
              "no_pivot": bool(o.get("no_pivot")), "preserve_fds": pf,
              "no_new_keyring": bool(o.get("no_new_keyring"))}
        bundle = o.get("bundle") or "."
        if cmd == "create":
            from dockyard.runtime.create import create

            create(root, pos[0], bundle, **kw)
            return 0
        from dockyard.runtime.run import run

        return run(root, pos[0], bundle, detach=bool(o.get("detach")), keep=bool(o.get("keep")),
                   **kw)
    if cmd == "start":
        from dockyard.runtime.start import start

        start(root, pos[0])
        return 0
    if cmd == "state":
        from dockyard.runtime import fastjson, state

        rec = state.load(root, pos[0])
        os.write(1, fastjson.dumps(state.public(root, rec), indent=2).encode())
        return 0
    if cmd == "kill":
        from dockyard.runtime import signals
        from dockyard.runtime.kill import kill

        kill(root, pos[0], signals.parse(pos[1]) if len(pos) > 1 else 15, bool(o.get("all")))
        return 0
    if cmd == "delete":
        from dockyard.runtime.delete import delete

        delete(root, pos[0], bool(o.get("force")))
        return 0
    if cmd == "list":
        from dockyard.runtime.listing import list_containers, table

        states = list_containers(root)
        fmt = o.get("format", "table")
        if o.get("quiet"):
            out = "".join(s["id"] + "\n" for s in states)
        elif fmt == "json":
            from dockyard.runtime import fastjson

            out = fastjson.dumps(states or None) + "\n"
        elif fmt == "table":
            out = table(states, _owners(root, states))
        else:
            raise UsageError(f"invalid format option: {fmt}")
        os.write(1, out.encode())
        return 0
    if cmd == "ps":
        from dockyard.runtime import ps

        fmt = o.get("format", "table")
        if fmt == "json":
            from dockyard.runtime import fastjson

            os.write(1, (fastjson.dumps(ps.pids(root, pos[0])) + "\n").encode())
        elif fmt == "table":
            os.write(1, ps.ps_table(root, pos[0], pos[1:]).encode())
        else:
            raise UsageError(f"invalid format option: {fmt}")
        return 0
    if cmd in ("pause", "resume"):
        from dockyard.runtime import pause

        getattr(pause, cmd)(root, pos[0])
        return 0
    if cmd == "features":
        from dockyard.runtime import fastjson
        from dockyard.runtime.features import features

        os.write(1, (fastjson.dumps(features(), indent=4) + "\n").encode())
        return 0
    if cmd == "exec":
        return _exec(root, o, pos)
    raise UsageError(f"unknown command {cmd}")


def _owners(root: str, states: list[dict]) -> dict[str, str]:
    import pwd

    out = {}
    for s in states:
        try:
            uid = os.stat(os.path.join(root, s["id"])).st_uid
            out[s["id"]] = pwd.getpwuid(uid).pw_name
        except (OSError, KeyError):
            out[s["id"]] = ""
    return out


def _exec(root: str, o: dict, pos: list[str]) -> int:
    from dockyard.errors import InvalidArgument
    from dockyard.runtime import fastjson, state
    from dockyard.runtime.exec import exec_process

    cid = pos[0]
    if o.get("process"):
        try:
            with open(o["process"], "rb") as f:
                proc = fastjson.loads(f.read())
        except OSError as e:
            raise InvalidArgument(f"--process {o['process']}: {e.strerror}") from None
        except ValueError as e:
            raise InvalidArgument(f"--process {o['process']}: invalid JSON: {e}") from None
        if not isinstance(proc, dict):
            raise InvalidArgument(f"--process {o['process']}: must be a JSON object")
    else:
        if len(pos) < 2:
            raise UsageError("exec: no command specified")
        rec = state.load(root, cid)
        proc = dict(rec.get("process") or {})
        proc["args"] = pos[1:]
        proc["terminal"] = bool(o.get("tty"))
        env = list(proc.get("env") or [])
        for e in o.get("env") or []:
            env.append(e)
        proc["env"] = env
        if o.get("cwd"):
            proc["cwd"] = o["cwd"]
        if o.get("user") or o.get("gids"):
            user = dict(proc.get("user") or {})
            if o.get("user"):
                uid, _, gid = o["user"].partition(":")
                try:
                    user["uid"] = int(uid)
                    if gid:
                        user["gid"] = int(gid)
                except ValueError:
                    raise InvalidArgument(f"--user {o['user']}: expected UID[:GID]") from None
            if o.get("gids"):
                try:
                    user["additionalGids"] = [int(g) for g in o["gids"]]
                except ValueError:
                    raise InvalidArgument("--additional-gids: expected numbers") from None
            proc["user"] = user
        if o.get("nnp"):
            proc["noNewPrivileges"] = True
        if o.get("cap"):
            caps = {k: list(v) for k, v in (proc.get("capabilities") or {}).items()}
            for c in o["cap"]:
                for k in ("bounding", "effective", "permitted", "ambient"):
                    caps.setdefault(k, []).append(c)
            proc["capabilities"] = caps
    detach = bool(o.get("detach"))
    if not detach:
        from dockyard.linux import syscalls as s

        s.prctl(s.PR_SET_CHILD_SUBREAPER, 1)
    console = o.get("console_socket")
    listener = None
    if proc.get("terminal") and not console and not detach:
        from dockyard.runtime.tty import ConsoleListener

        listener = ConsoleListener(root)
        console = listener.path
    try:
        pid = exec_process(root, cid, proc, console_socket=console, pid_file=o.get("pid_file"),
                           preserve_fds=int(o.get("preserve_fds") or 0))
        master = listener.receive() if listener is not None else -1
    finally:
        if listener is not None:
            listener.close()
    if detach:
        return 0
    return wait_forwarding(pid, master)


def wait_forwarding(pid: int, master: int = -1) -> int:
    """Wait for ``pid`` (reaping any other child), forwarding common signals; exit status.
    With a pty ``master``, copy it to and from our stdio first (``tty.proxy``)."""
    import _signal

    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for sig in (1, 2, 3, 10, 12, 15, 28):
        _signal.signal(sig, forward)
    if master >= 0:
        from dockyard.runtime.tty import proxy

        proxy(master)
    while True:
        try:
            wpid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 255
        except InterruptedError:
            continue
        if wpid == pid:
            code = os.waitstatus_to_exitcode(status)
            return 128 - code if code < 0 else code
