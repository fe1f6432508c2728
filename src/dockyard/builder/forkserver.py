"""A pre-forked ``dockyard-runtime``: RUN steps start without a new interpreter each time.

Starting ``dockyard-runtime run`` as a program costs an interpreter start and the runtime's
imports on every RUN step (about 15 of its ~25 ms here). The daemon must not fork itself (it
is threaded), so :class:`ForkServer` starts one small single-threaded helper process,
``python -m dockyard.builder.forkserver FD``, which imports the runtime once and then only
forks: each child runs ``dockyard.runtime.cli.main(argv)`` exactly as the program would.

Protocol, over a SOCK_SEQPACKET socket pair (the helper's end is FD)::

    daemon ── sendmsg(JSON {"argv": [...], "cwd": "..."}, fds=[stdin, stdout, stderr, reply])
    helper ── fork ── child: fds onto 0/1/2, chdir, SIGCHLD default, main(argv)
    child  ── reply socket: b"pid <n>" at once, b"exit <code>" at the end, then _exit

A child killed before it reports closes the reply socket: :meth:`Run.wait` gives 137 then.
The helper ignores SIGCHLD (the kernel reaps its children) and exits when the daemon's end
closes (daemon exit) or on its own error; ``ForkServer.close()`` ends it too. If the helper
is gone, :meth:`ForkServer.spawn` starts a new one.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading


class Run:
    """One runtime invocation: ``stdout`` is the read end of the output pipe (when asked),
    ``stderr`` that of a separate error pipe (when asked, else None)."""

    def __init__(self, reply: socket.socket, stdout: int | None, stderr: int | None = None) -> None:
        self._reply = reply
        self.stdout = os.fdopen(stdout, "rb") if stdout is not None else None
        self.stderr = os.fdopen(stderr, "rb") if stderr is not None else None
        msg = reply.recv(64)
        self.pid = int(msg.split()[1]) if msg.startswith(b"pid ") else 0
        self.returncode: int | None = None

    def wait(self, timeout: float | None = None) -> int:
        """The exit status (137 if the child died without reporting one). Raises TimeoutError."""
        if self.returncode is None:
            self._reply.settimeout(timeout)
            msg = self._reply.recv(64)
            self._reply.close()
            self.returncode = int(msg.split()[1]) if msg.startswith(b"exit ") else 137
        return self.returncode

    def kill(self) -> None:
        """SIGKILL the child (a process this daemon had started through its helper)."""
        if self.returncode is None and self.pid > 0:
            try:
                os.kill(self.pid, 9)
            except ProcessLookupError:
                pass


class ForkServer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def _start(self) -> socket.socket:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "dockyard.builder.forkserver", str(theirs.fileno())],
                pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, close_fds=True,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self._sock = ours
        return ours

    def spawn(self, argv: list[str], cwd: str, *, stdin: int, capture: bool = True,
              split_stderr: bool = False) -> Run:
        """Start ``dockyard-runtime <argv>`` in ``cwd``; with ``capture`` stdout and stderr go
        to one pipe, ``Run.stdout`` (with ``split_stderr`` too, stderr goes to its own pipe,
        ``Run.stderr``). Raises OSError when no helper can be started."""
        reply, child_reply = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        r, w = os.pipe() if capture else (None, os.open(os.devnull, os.O_WRONLY))
        er, ew = os.pipe() if capture and split_stderr else (None, None)
        try:
            msg = json.dumps({"argv": argv, "cwd": cwd}).encode()
            fds = [stdin, w, ew if ew is not None else w, child_reply.fileno()]
            with self._lock:
                for attempt in (0, 1):
                    sock = self._sock or self._start()
                    try:
                        socket.send_fds(sock, [msg], fds)
                        break
                    except OSError:
                        self._drop()
                        if attempt:
                            raise
        except BaseException:
            for fd in (r, er):
                if fd is not None:
                    os.close(fd)
            reply.close()
            raise
        finally:
            os.close(w)
            if ew is not None:
                os.close(ew)
            child_reply.close()
        try:
            return Run(reply, r, er)
        except BaseException:
            for fd in (r, er):
                if fd is not None:
                    os.close(fd)
            reply.close()
            raise

    def _drop(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._proc is not None:
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None

    def close(self) -> None:
        """End the helper (it exits when its socket closes); running children are unaffected."""
        with self._lock:
            self._drop()


# ---------------------------------------------------------------------- the helper process


def _child(msg: bytes, fds: list[int]) -> None:
    import signal

    code = 1
    reply = -1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        req = json.loads(msg)
        stdin, out, err, reply = fds
        for i, fd in enumerate((stdin, out, err)):
            os.dup2(fd, i)
        for fd in (stdin, out, err):
            if fd > 2:
                os.close(fd)
        os.chdir(req["cwd"])
        os.write(reply, b"pid %d" % os.getpid())
        from dockyard.runtime.cli import main

        code = main(list(req["argv"]))
    except BaseException as e:  # noqa: BLE001 - reported like the program would
        try:
            os.write(2, f"dockyard-runtime: {type(e).__name__}: {e}\n".encode())
        except OSError:
            pass
    finally:
        for f in (sys.stdout, sys.stderr):
            try:
                f.flush()
            except (OSError, ValueError):
                pass
        try:
            os.write(reply, b"exit %d" % code)
        except OSError:
            pass
        os._exit(code & 0xFF if code >= 0 else 1)


def serve(fd: int) -> None:
    import signal

    # Import now what every ``run`` needs, so children only fork (see the runtime's own
    # lazy imports: these are the ones a build's RUN uses).
    import dockyard.linux.caps  # noqa: F401
    import dockyard.linux.cgroups  # noqa: F401
    import dockyard.runtime.cli  # noqa: F401
    import dockyard.runtime.create  # noqa: F401
    import dockyard.runtime.delete  # noqa: F401
    import dockyard.runtime.run  # noqa: F401
    import dockyard.runtime.start  # noqa: F401

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    sock = socket.socket(fileno=fd)
    while True:
        try:
            msg, fds, _flags, _addr = socket.recv_fds(sock, 1 << 16, 8)
        except InterruptedError:
            continue
        if not msg:
            return  # the daemon closed its end
        if len(fds) != 4:
            for f in fds:
                os.close(f)
            continue
        pid = os.fork()
        if pid == 0:
            sock.close()
            _child(msg, fds)
        for f in fds:
            os.close(f)


if __name__ == "__main__":
    serve(int(sys.argv[1]))
