"""The monitor: ONE long-lived process per exec root that owns every container's stdio.

Lifecycle: dockyardd starts it (``python -m dockyard.shim.monitor --socket S --state-dir D``,
new session) when no monitor answers on ``S``; it outlives daemon restarts (even ``kill -9``),
and exits when asked to shut down while no process it supervises is alive.

It is ``PR_SET_CHILD_SUBREAPER``: containers' init processes (and detached exec processes) become
its children once the runtime's ``create``/``exec`` exits, so it reaps them, records their exit
status atomically, writes json-file logs, fans output out to attached clients and forwards stdin.
It is single-threaded, on a small event loop of its own (:mod:`dockyard.shim.loop`: asyncio's
import alone kept ~5 MB resident); the runtime is started with posix_spawn (see ``runner``).

On-disk state (``--state-dir``, normally ``<exec-root>/monitor``)::

    state-dir/
      <id>.json      {"id", "kind", "container_id", "pid", "running", "exit_code", "exited_at"}

A record is written when a process starts and rewritten when it exits; the daemon ``forget``s
container records once it has processed the exit; exec records are dropped after publishing.

Protocol: see ``dockyard.shim.protocol``.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import json
import os
import signal
import socket
import struct
import sys
import termios
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from dockyard.atomicfile import write_atomic
from dockyard.shim import loop as aio
from dockyard.shim import protocol, runner
from dockyard.shim.logfile import JsonLog, replay, rfc3339_nano

PR_SET_CHILD_SUBREAPER = 36
DRAIN_TIMEOUT = 2.0  # after an exit, how long output pipes may stay open (a leaked holder)


class RequestError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def exit_code_of(status: int) -> int:
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


class Reaper:
    """Reaps every child; dispatches exit codes to whoever waits for that pid."""

    def __init__(self) -> None:
        self.callbacks: dict[int, Callable[[int], None]] = {}
        self.unclaimed: OrderedDict[int, int] = OrderedDict()

    def watch(self, pid: int, cb: Callable[[int], None]) -> None:
        if pid in self.unclaimed:
            cb(self.unclaimed.pop(pid))
        else:
            self.callbacks[pid] = cb

    def wait(self, pid: int) -> aio.Future[int]:
        fut: aio.Future[int] = aio.get_running_loop().create_future()
        self.watch(pid, lambda code: fut.done() or fut.set_result(code))
        return fut

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            code = exit_code_of(status)
            cb = self.callbacks.pop(pid, None)
            if cb is not None:
                cb(code)
            else:
                # A container init may exit before we read its pid file: keep a bounded memory.
                self.unclaimed[pid] = code
                while len(self.unclaimed) > 4096:
                    self.unclaimed.popitem(last=False)


class Proc:
    """A supervised process: a container's init (``kind="init"``) or an exec."""

    def __init__(self, mon: Monitor, pid_id: str, kind: str, container_id: str, tty: bool,
                 stdin_once: bool, keep_backlog: bool) -> None:
        self.mon = mon
        self.id = pid_id
        self.kind = kind
        self.container_id = container_id
        self.tty = tty
        self.stdin_once = stdin_once
        self.pid = 0
        self.stdin_fd: int | None = None
        self.out_fds: dict[int, int] = {}  # fd -> stream
        self.pty_fd: int | None = None
        self.log: JsonLog | None = None
        self.subs: list[tuple[aio.StreamWriter, bool, bool]] = []
        self.backlog: list[bytes] | None = [] if keep_backlog else None
        self.exit_code: int | None = None
        self.exited_at = ""
        self.finished = aio.Event()
        self.drain_handle: aio.TimerHandle | None = None
        self.runtime: list[str] = []  # the runtime's argv prefix, e.g. [runc, --root, R]

    # output ---------------------------------------------------------------------------------
    def watch_output(self, fd: int, stream: int) -> None:
        os.set_blocking(fd, False)
        self.out_fds[fd] = stream
        aio.get_running_loop().add_reader(fd, self._readable, fd)

    def _readable(self, fd: int) -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError as e:  # EIO: the pty's other side closed
            if e.errno not in (errno.EIO, errno.EBADF):
                raise
            data = b""
        if not data:
            self._close_output(fd)
            return
        stream = self.out_fds[fd]
        if self.log is not None:
            self.log.write("stderr" if stream == protocol.STDERR else "stdout", data)
        fr = protocol.frame(stream, data)
        if self.backlog is not None:
            self.backlog.append(fr)
        for w, want_out, want_err in self.subs:
            if (want_out if stream == protocol.STDOUT else want_err) and not w.is_closing():
                w.write(fr)

    def _close_output(self, fd: int) -> None:
        aio.get_running_loop().remove_reader(fd)
        self.out_fds.pop(fd, None)
        if fd != self.pty_fd:
            os.close(fd)
        self._maybe_finish()

    # lifecycle --------------------------------------------------------------------------------
    def started(self, pid: int) -> None:
        self.pid = pid
        self.mon.save_record(self)
        self.mon.reaper.watch(pid, self._exited)

    def _exited(self, code: int) -> None:
        self.exit_code = code
        self.exited_at = rfc3339_nano(time.time_ns())
        if self.out_fds:
            self.drain_handle = aio.get_running_loop().call_later(DRAIN_TIMEOUT, self._force_drain)
        self._maybe_finish()

    def _force_drain(self) -> None:
        for fd in list(self.out_fds):
            self._close_output(fd)

    def _maybe_finish(self) -> None:
        if self.exit_code is None or self.out_fds or self.finished.is_set():
            return
        if self.drain_handle is not None:
            self.drain_handle.cancel()
        self.finished.set()
        if self.log is not None:
            self.log.close()
            self.log = None
        for fd in (self.stdin_fd, self.pty_fd):
            if fd is not None:
                try:
                    aio.get_running_loop().remove_writer(fd)
                    os.close(fd)
                except OSError:
                    pass
        self.stdin_fd = self.pty_fd = None
        end = protocol.frame(protocol.EXIT_STREAM, json.dumps({"exit_code": self.exit_code}).encode())
        if self.backlog is not None:
            self.backlog.append(end)
        for w, _, _ in self.subs:
            if not w.is_closing():
                w.write(end)
                w.close()
        self.subs.clear()
        self.mon.process_finished(self)

    def record(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "container_id": self.container_id, "pid": self.pid,
                "running": self.exit_code is None, "exit_code": self.exit_code,
                "exited_at": self.exited_at}

    # input ------------------------------------------------------------------------------------
    async def write_stdin(self, data: bytes) -> None:
        fd = self.pty_fd if self.tty else self.stdin_fd
        while data and fd is not None and not self.finished.is_set():
            try:
                n = os.write(fd, data)
                data = data[n:]
            except BlockingIOError:
                fut: aio.Future[None] = aio.get_running_loop().create_future()
                aio.get_running_loop().add_writer(fd, _resolve, fut)
                try:
                    await fut
                finally:
                    aio.get_running_loop().remove_writer(fd)
            except OSError:
                return

    def close_stdin(self) -> None:
        if self.tty or self.stdin_fd is None:
            return
        os.close(self.stdin_fd)
        self.stdin_fd = None

    def resize(self, height: int, width: int) -> None:
        if self.pty_fd is None:
            raise RequestError("Conflict", "the process has no tty")
        fcntl.ioctl(self.pty_fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


def _resolve(fut: aio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def recv_fd(sock: socket.socket) -> int:
    _, anc, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(4))
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            return struct.unpack("i", data[:4])[0]
    raise RequestError("Internal", "the runtime sent no pty over the console socket")


class Monitor:
    def __init__(self, sock_path: str, state_dir: str) -> None:
        self.sock_path = sock_path
        self.state_dir = state_dir
        self.reaper = Reaper()
        self.procs: dict[str, Proc] = {}
        self.events: list[aio.StreamWriter] = []
        self.pending_deletes: dict[str, aio.Task[None]] = {}
        self.stop = aio.Event()
        self.devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)

    # records ------------------------------------------------------------------------------------
    def save_record(self, p: Proc) -> None:
        # not durable: the exec root (normally /run) and these processes end with a reboot
        write_atomic(os.path.join(self.state_dir, f"{p.id}.json"), json.dumps(p.record()).encode(),
                     durable=False)

    def drop_record(self, pid_id: str) -> None:
        try:
            os.unlink(os.path.join(self.state_dir, f"{pid_id}.json"))
        except FileNotFoundError:
            pass

    def records(self) -> list[dict[str, Any]]:
        out = []
        for name in os.listdir(self.state_dir):
            if not name.endswith(".json") or name.startswith("."):
                continue
            pid_id = name[:-5]
            p = self.procs.get(pid_id)
            if p is not None:
                out.append(p.record())
                continue
            try:
                with open(os.path.join(self.state_dir, name), "rb") as f:
                    rec = json.load(f)
            except (OSError, ValueError):
                continue
            if rec.get("running"):  # a previous monitor died: that process is not ours anymore
                rec.update(running=False, exit_code=255, exited_at="")
            out.append(rec)
        return out

    def kill_orphans(self) -> None:
        """At start-up: processes a dead monitor supervised have lost their stdio and their
        reaper. Kill them (their records then say exit 137) rather than leave them running
        unsupervised; a pid is only killed if its cgroup still names the container."""
        for name in os.listdir(self.state_dir):
            if not name.endswith(".json") or name.startswith("."):
                continue
            path = os.path.join(self.state_dir, name)
            try:
                with open(path, "rb") as f:
                    rec = json.load(f)
            except (OSError, ValueError):
                continue
            if not rec.get("running"):
                continue
            pid, cid = int(rec.get("pid") or 0), str(rec.get("container_id") or rec.get("id"))
            try:
                with open(f"/proc/{pid}/cgroup") as f:
                    ours = pid > 0 and cid in f.read()
            except OSError:
                ours = False
            if ours:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            rec.update(running=False, exit_code=137 if ours else 255, exited_at=rfc3339_nano(time.time_ns()))
            write_atomic(path, json.dumps(rec).encode(), durable=False)

    def process_finished(self, p: Proc) -> None:
        self.save_record(p)
        msg = protocol.encode(p.record())
        for w in list(self.events):
            if w.is_closing():
                self.events.remove(w)
            else:
                w.write(msg)
        if p.kind == "exec":
            self.drop_record(p.id)
            aio.get_running_loop().call_later(30, self._drop_proc, p)
        else:
            self.pending_deletes[p.id] = aio.ensure_future(self._delete_after_exit(p))

    def _drop_proc(self, p: Proc) -> None:
        if self.procs.get(p.id) is p:
            del self.procs[p.id]

    async def _delete_after_exit(self, p: Proc) -> None:
        try:
            await self.run_runtime(p.runtime, ["delete", "--force", p.id], None)
        except RequestError:
            pass
        finally:
            self.pending_deletes.pop(p.id, None)

    # spawning the runtime -------------------------------------------------------------------
    async def run_runtime(self, prefix: list[str], args: list[str], log_path: str | None,
                          stdio: tuple[int, int, int] | None = None) -> str:
        """Run the runtime to completion; return its stdout or raise with its error."""
        root = runner.in_process(prefix)
        if root is not None and stdio is None and args and args[0] in ("start", "delete"):
            try:
                runner.lib_call(root, args)
                return ""
            except runner.InProcessFailure as e:
                raise RequestError("Runtime", str(e)) from None
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        since = runner.log_size(log_path) if log_path else 0
        try:
            fds = stdio or (self.devnull, out_w, err_w)
            pid = runner.spawn(runner.global_args(prefix, log_path) + args, *fds)
        except OSError as e:
            for fd in (out_r, out_w, err_r, err_w):
                os.close(fd)
            raise RequestError("Internal", f"cannot run the OCI runtime {prefix[0]}: {e}") from e
        os.close(out_w)
        os.close(err_w)
        try:
            out, err, code = await aio.gather(read_all(out_r), read_all(err_r),
                                                  self.reaper.wait(pid))
        finally:
            os.close(out_r)
            os.close(err_r)
        if code != 0:
            msg = (runner.last_error(log_path, since) if log_path else "") or err.decode(
                "utf-8", "replace").strip() or f"{args[0]} exited with status {code}"
            raise RequestError("Runtime", msg)
        return out.decode("utf-8", "replace")

    async def _in_process(self, kind: str, root: str, pid_id: str, cid: str, bundle: str,
                          req: dict[str, Any], pid_file: str, console_path: str | None,
                          stdio: tuple[int, int, int]) -> str:
        """The runtime's library, called from this (single-threaded) process. It forks the
        container's init (or exec process) directly: our reaper gets it like any child."""
        await aio.sleep(0)  # let the console socket's accept be scheduled first
        try:
            if kind == "init":
                runner.lib_create(root, pid_id, bundle, pid_file, console_path, stdio)
            else:
                runner.lib_exec(root, cid, req["process"], pid_file, console_path, stdio)
        except runner.InProcessFailure as e:
            raise RequestError("Runtime", str(e)) from None
        return ""

    async def spawn_process(self, req: dict[str, Any], kind: str) -> Proc:
        """``runtime create`` (init) or ``runtime exec --detach`` with pipes this monitor owns."""
        pid_id = req["id"]
        cid = req.get("container_id", pid_id)
        if kind == "init" and pid_id in self.pending_deletes:
            await self.pending_deletes[pid_id]
        old = self.procs.get(pid_id)
        if old is not None and not old.finished.is_set():
            raise RequestError("Conflict", f"process {pid_id} is already supervised")
        bundle = req["bundle"]
        tty = bool(req.get("tty"))
        p = Proc(self, pid_id, kind, cid, tty, bool(req.get("stdin_once")), kind == "exec")
        p.runtime = list(req["runtime"])
        log_path = os.path.join(bundle, "runtime.log")
        pid_file = os.path.join(bundle, f"{pid_id}.pid" if kind == "exec" else "init.pid")
        to_close: list[int] = []
        console: socket.socket | None = None
        console_path: str | None = None
        try:
            if tty:
                # sun_path holds 108 bytes: keep the socket next to our state, not in the bundle
                console_path = os.path.join(self.state_dir, f"c-{pid_id[:16]}.sock")
                try:
                    os.unlink(console_path)
                except FileNotFoundError:
                    pass
                console = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                console.bind(console_path)
                console.listen(1)
                console.setblocking(False)
                stdio = (self.devnull, self.devnull, self.devnull)
            else:
                if req.get("stdin"):
                    in_r, in_w = os.pipe()
                    to_close.append(in_r)
                    os.set_blocking(in_w, False)
                    p.stdin_fd = in_w
                else:
                    in_r = self.devnull
                out_r, out_w = os.pipe()
                err_r, err_w = os.pipe()
                to_close += [out_w, err_w]
                p.watch_output(out_r, protocol.STDOUT)
                p.watch_output(err_r, protocol.STDERR)
                stdio = (in_r, out_w, err_w)
            if kind == "init":
                args = runner.create_args(pid_id, bundle, pid_file, console_path)
            else:
                args = runner.exec_args(cid, req["process"], pid_file, console_path)
            root = runner.in_process(p.runtime)
            if root is not None:
                run = aio.ensure_future(self._in_process(kind, root, pid_id, cid, bundle, req,
                                                             pid_file, console_path, stdio))
            else:
                run = aio.ensure_future(self.run_runtime(p.runtime, args, log_path, stdio))
            if console is not None:
                loop = aio.get_running_loop()
                accept = aio.ensure_future(loop.sock_accept(console))
                done, _ = await aio.wait({run, accept}, return_when=aio.FIRST_COMPLETED)
                if accept not in done:
                    if run.exception() is not None:  # failed before sending the pty
                        accept.cancel()
                        await run  # raises the runtime's error
                    else:  # an in-process create connected and returned: the pty is queued
                        await aio.wait_for(accept, 10)
                conn, _ = accept.result()
                with conn:
                    conn.setblocking(True)
                    p.pty_fd = recv_fd(conn)
                os.set_blocking(p.pty_fd, False)
                size = req.get("console_size")
                if size and all(size):  # our runtime leaves the pty's size to its owner (us)
                    p.resize(int(size[0]), int(size[1]))
                p.watch_output(p.pty_fd, protocol.STDOUT)
            await run
            for fd in to_close:
                os.close(fd)
            to_close.clear()
            if p.log is None and req.get("log_path"):
                p.log = JsonLog(req["log_path"], int(req.get("log_max_size") or 0),
                                int(req.get("log_max_file") or 1))
            with open(pid_file) as f:
                pid = int(f.read().strip())
        except BaseException:
            for fd in to_close:
                os.close(fd)
            closed = set(p.out_fds)
            for fd in closed:
                aio.get_running_loop().remove_reader(fd)
                os.close(fd)
            p.out_fds.clear()
            # the pty is also an output fd once watched: closing it twice raised EBADF, which
            # hid the runtime's error (`run -t busybox nonexist` answered "Bad file descriptor")
            for fd in (p.stdin_fd, p.pty_fd):
                if fd is not None and fd not in closed:
                    os.close(fd)
            p.stdin_fd = p.pty_fd = None
            if kind == "init":
                try:
                    await self.run_runtime(p.runtime, ["delete", "--force", pid_id], None)
                except RequestError:
                    pass
            raise
        finally:
            if console is not None:
                console.close()
                if console_path:
                    try:
                        os.unlink(console_path)
                    except FileNotFoundError:
                        pass
        self.procs[pid_id] = p
        p.started(pid)
        return p

    # requests ---------------------------------------------------------------------------------
    async def handle(self, reader: aio.StreamReader, writer: aio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            if not line:
                writer.close()
                return
            req = protocol.decode(line)
            op = req.get("op")
            handler = getattr(self, f"op_{op}", None)
            if handler is None:
                raise RequestError("InvalidArgument", f"unknown monitor operation {op!r}")
            keep = await handler(req, reader, writer)
        except aio.CancelledError:
            writer.close()
            return
        except RequestError as e:
            writer.write(protocol.encode({"ok": False, "kind": e.kind, "error": str(e)}))
            keep = False
        except Exception as e:  # noqa: BLE001 - report, never crash the monitor
            writer.write(protocol.encode({"ok": False, "kind": "Internal", "error": f"{type(e).__name__}: {e}"}))
            keep = False
        if not keep:
            try:
                await writer.drain()
            except ConnectionError:
                pass
            writer.close()

    def _proc(self, pid_id: str) -> Proc:
        p = self.procs.get(pid_id)
        if p is None:
            raise RequestError("NotFound", f"no such process: {pid_id}")
        return p

    async def op_ping(self, req: dict[str, Any], r: Any, w: aio.StreamWriter) -> bool:
        w.write(protocol.encode({"ok": True, "pid": os.getpid(), "version": protocol.VERSION}))
        return False

    async def op_create(self, req: dict[str, Any], r: Any, w: aio.StreamWriter) -> bool:
        p = await self.spawn_process(req, "init")
        w.write(protocol.encode({"ok": True, "pid": p.pid}))
        return False

    async def op_start(self, req: dict[str, Any], r: Any, w: aio.StreamWriter) -> bool:
        p = self._proc(req["id"])
        await self.run_runtime(p.runtime, ["start", p.id], os.path.join(req["bundle"], "runtime.log"))
        w.write(protocol.encode({"ok": True, "pid": p.pid}))
        return False

    async def op_runtime(self, req: dict[str, Any], r: Any, w: aio.StreamWriter) -> bool:
        out = await self.run_runtime(list(req["runtime"]), list(req["args"]), None)
        w.write(protocol.encode({"ok": True, "stdout": out}))
        return False

    async def op_delete(self, req: dict[str, Any], r: Any, w: aio.StreamWriter) -> bool:
        """Forget a container that was created but will not run (kill + runtime delete)."""
        p = self.procs.get(req["id"])
        if p is not None and p.exit_code is None and p.pid:
            os.kill(p.pid, signal.SIGKILL)
            await p.finished.wait()
        pending = self.pending_deletes.get(req["id"])
        if pending is not None:
            await pending
        elif p is None:
            try:
                await self.run_runtime(list(req["runtime"]), ["delete", "--force", req["id"]], None)
            except RequestError:
                pass
        self.procs.pop(req["id"], None)
        self.drop_record(req["id"])
        w.write(protocol.encode({"ok": True}))
        return False

    async def op_kill(self, req: dict[str, Any], r: Any, w: aio.StreamWriter) -> bool:
        p = self._proc(req["id"])
        if p.exit_code is not None or not p.pid:
            raise RequestError("Conflict", f"process {p.id} is not running")
        # The pid is our (un-reaped) child, so it cannot have been reused.
        os.kill(p.pid, int(req.get("signal", signal.SIGKILL)))
        w.write(protocol.encode({"ok": True}))
        return False

    async def op_resize(self, req: dict[str, Any], r: Any, w: aio.StreamWriter) -> bool:
        self._proc(req["id"]).resize(int(req["h"]), int(req["w"]))
        w.write(protocol.encode({"ok": True}))
        return False

    async def op_list(self, req: dict[str, Any], r: Any, w: aio.StreamWriter) -> bool:
        w.write(protocol.encode({"ok": True, "records": self.records()}))
        return False

    async def op_forget(self, req: dict[str, Any], r: Any, w: aio.StreamWriter) -> bool:
        p = self.procs.get(req["id"])
        if p is None or p.finished.is_set():
            self.procs.pop(req["id"], None)
            self.drop_record(req["id"])
        w.write(protocol.encode({"ok": True}))
        return False

    async def op_events(self, req: dict[str, Any], r: aio.StreamReader, w: aio.StreamWriter) -> bool:
        w.write(protocol.encode({"ok": True}))
        self.events.append(w)
        await r.read()  # until the daemon goes away
        if w in self.events:
            self.events.remove(w)
        return False

    async def op_shutdown(self, req: dict[str, Any], r: Any, w: aio.StreamWriter) -> bool:
        alive = [p.id for p in self.procs.values() if not p.finished.is_set()]
        if alive and req.get("if_idle", True):
            w.write(protocol.encode({"ok": True, "stopping": False, "alive": len(alive)}))
            return False
        w.write(protocol.encode({"ok": True, "stopping": True}))
        await w.drain()
        self.stop.set()
        return False

    async def op_attach(self, req: dict[str, Any], r: aio.StreamReader, w: aio.StreamWriter) -> bool:
        p = self._proc(req["id"])
        w.write(protocol.encode({"ok": True, "tty": p.tty}))
        if req.get("logs"):
            # The log so far, then (with no await in between) the subscription: a line is
            # either in the file or sent live, never both, never neither.
            want = {n for n in ("stdout", "stderr") if req.get(n, True)}
            if p.log is not None:
                for stream, data in replay(p.log.path, want):
                    w.write(protocol.frame(protocol.STDERR if stream == "stderr" else protocol.STDOUT, data))
                for stream, rest in p.log._partial.items():  # sent live already, not yet in the file
                    if stream in want:
                        w.write(protocol.frame(protocol.STDERR if stream == "stderr" else protocol.STDOUT, rest))
        await self._stream(p, req, r, w)
        return True

    async def op_exec(self, req: dict[str, Any], r: aio.StreamReader, w: aio.StreamWriter) -> bool:
        p = await self.spawn_process(req, "exec")
        w.write(protocol.encode({"ok": True, "pid": p.pid}))
        if req.get("detach"):
            p.backlog = None
            return False
        for fr in p.backlog or []:
            w.write(fr)
        finished = p.finished.is_set()
        p.backlog = None
        if finished:
            w.close()
            return True
        await self._stream(p, req, r, w, replayed=True)
        return True

    async def _stream(self, p: Proc, req: dict[str, Any], r: aio.StreamReader,
                      w: aio.StreamWriter, replayed: bool = False) -> None:
        if p.finished.is_set():
            if not replayed:
                w.write(protocol.frame(protocol.EXIT_STREAM, json.dumps({"exit_code": p.exit_code}).encode()))
            w.close()
            return
        p.subs.append((w, bool(req.get("stdout", True)), bool(req.get("stderr", True))))
        if not req.get("stdin"):
            return
        # Forward stdin frames until STDIN_EOF, a detach (close without it) or the end.
        buf = bytearray()
        while not p.finished.is_set():
            try:
                data = await r.read(65536)
            except ConnectionError:
                data = b""
            if not data:
                return  # detached (or the daemon went away): the process keeps its stdin
            buf += data
            for stream, payload in protocol.parse_frames(buf):
                if stream == protocol.STDIN:
                    await p.write_stdin(payload)
                elif stream == protocol.STDIN_EOF:
                    if p.stdin_once or req.get("close_stdin"):
                        p.close_stdin()
                    return

    async def serve(self) -> None:
        loop = aio.get_running_loop()
        loop.add_signal_handler(signal.SIGCHLD, self.reaper.reap)
        loop.add_signal_handler(signal.SIGTERM, self.stop.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: None)
        self.kill_orphans()
        self.reaper.reap()
        try:
            os.unlink(self.sock_path)
        except FileNotFoundError:
            pass
        server = await aio.start_unix_server(self.handle, path=self.sock_path)
        os.chmod(self.sock_path, 0o600)
        print("ready", flush=True)  # the daemon waits for this line on our stdout
        os.dup2(self.devnull, 1)
        await self.stop.wait()
        server.close()
        try:
            os.unlink(self.sock_path)
        except FileNotFoundError:
            pass


async def read_all(fd: int) -> bytes:
    """Read a pipe to EOF without blocking the loop."""
    loop = aio.get_running_loop()
    os.set_blocking(fd, False)
    chunks: list[bytes] = []
    done = loop.create_future()

    def readable() -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        if data:
            chunks.append(data)
            return
        loop.remove_reader(fd)
        if not done.done():
            done.set_result(None)

    loop.add_reader(fd, readable)
    try:
        await done
    finally:
        loop.remove_reader(fd)
    return b"".join(chunks)


def main(argv: list[str] | None = None) -> None:
    # two required options, parsed by hand: argparse (and gettext) would stay resident for good
    opts: dict[str, str] = {}
    rest = list(sys.argv[1:] if argv is None else argv)
    while rest:
        key = rest.pop(0)
        if key not in ("--socket", "--state-dir") or not rest:
            sys.exit("usage: dockyard-monitor --socket PATH --state-dir DIR")
        opts[key] = rest.pop(0)
    if set(opts) != {"--socket", "--state-dir"}:
        sys.exit("usage: dockyard-monitor --socket PATH --state-dir DIR")
    os.makedirs(opts["--state-dir"], exist_ok=True)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        sys.exit(f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(err)}")
    aio.run(Monitor(opts["--socket"], opts["--state-dir"]).serve())


if __name__ == "__main__":
    main()
