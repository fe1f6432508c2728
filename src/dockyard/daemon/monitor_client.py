"""The daemon's side of the monitor protocol (see ``dockyard.shim.protocol``).

``MonitorClient.connect()`` reaches the monitor on ``<exec-root>/monitor.sock`` or starts one
(a fresh interpreter, new session, so it survives the daemon). ``request`` maps the monitor's
error kinds to the error vocabulary; ``open_stream`` returns the connection of an
``attach``/``exec`` request; ``subscribe`` yields exit records forever (reconnecting).

Every request waits for its reply line at most ``REPLY_TIMEOUTS[op]`` seconds (connect included),
so a monitor that is alive but stuck (stopped, spinning, blocked in the kernel) fails the daemon's
request with ``MonitorTimeout`` (an ``Unavailable``: HTTP 503, "... context deadline exceeded",
as dockerd answers when containerd does not) instead of hanging it forever. Ops the monitor
answers from memory (ping, kill, list, ...) get a few seconds; ops that run the OCI runtime or
wait for a process (create, start, delete, exec) get minutes. Only the reply is timed: the
stream of an ``attach``/``exec``/``events`` after it legitimately lasts as long as the process.
A timed-out request may still be carried out later by the monitor (it is not cancelled there).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import struct
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from dockyard import errors
from dockyard.shim import protocol

log = logging.getLogger("dockyard.monitor")

KINDS: dict[str, type[errors.DockyardError]] = {
    "NotFound": errors.NotFound, "Conflict": errors.Conflict,
    "InvalidArgument": errors.InvalidArgument, "Internal": errors.Internal,
}


class RuntimeFailure(errors.DockyardError):
    """The OCI runtime refused (its message is what the user sees)."""


class MonitorTimeout(errors.Unavailable):
    """The monitor accepted (or did not accept) a request but gave no reply in time."""


# Seconds to wait for the reply line of each op. The short ones are answered by the monitor's
# loop without waiting on anything; the long ones run the OCI runtime (hooks included) or wait
# for a killed process and its output to drain (op delete: DRAIN_TIMEOUT, then runtime delete).
REPLY_TIMEOUTS: dict[str, float] = {
    "ping": 5.0, "list": 10.0, "kill": 10.0, "resize": 10.0, "forget": 10.0, "shutdown": 10.0,
    "attach": 10.0, "events": 10.0,
    "create": 120.0, "start": 120.0, "delete": 120.0, "runtime": 120.0, "exec": 120.0,
}
DEFAULT_REPLY_TIMEOUT = 30.0  # an op not listed above (a newer one)


def _listener_dead(path: str) -> bool:
    """Is the process that listens on ``path`` gone? SO_PEERCRED of a connected unix socket
    names the process that called listen(), even when other processes hold the socket."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        s.settimeout(2)
        s.connect(path)
        pid = struct.unpack("3i", s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[0]
    except OSError:
        return False  # nobody listens (a connect refused): the usual way to a new monitor
    finally:
        s.close()
    if pid <= 0:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            # "pid (comm) S ...": a killed monitor may linger as a zombie until init reaps it
            return f.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X")
    except OSError:
        return True


class MonitorClient:
    def __init__(self, exec_root: Path) -> None:
        self.sock = str(exec_root / "monitor.sock")
        self.state_dir = str(exec_root / "monitor")
        # the protocol version of the monitor we talk to: an older one kept because it
        # supervises containers may lack newer requests (attach with logs: version 3)
        self.version = protocol.VERSION
        # per instance, so a test can shorten one op's wait without touching others
        self.timeouts: dict[str, float] = dict(REPLY_TIMEOUTS)

    async def _ping(self) -> dict[str, Any] | None:
        """The ping's reply, or None when no monitor answers (none listens, or it hung up).
        A monitor that accepts but does not answer raises ``MonitorTimeout``: it is alive
        (maybe stopped), so starting a second one beside it would orphan its containers."""
        try:
            return await self.request({"op": "ping"})
        except MonitorTimeout:
            raise
        except (OSError, errors.DockyardError):
            return None

    async def connect(self) -> None:
        if _listener_dead(self.sock):
            # A killed monitor's socket is still held open by a child it forked (a container's
            # init waiting for its start, which inherited the fds): connections are accepted
            # by the kernel and never answered. Unlink it so a new monitor takes the path.
            log.warning("the monitor that made %s is gone; starting a new one", self.sock)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.sock)
        reply = await self._ping()
        if reply is not None and reply.get("version") == protocol.VERSION:
            self.version = protocol.VERSION
            return
        if reply is not None:
            # A monitor from another version: replace it if it supervises nothing.
            stop = await self.request({"op": "shutdown", "if_idle": True})
            if not stop.get("stopping"):
                log.warning("the monitor speaks protocol %s, not %s, and supervises running "
                            "containers: keeping it", reply.get("version"), protocol.VERSION)
                self.version = int(reply.get("version") or 1)
                return
            for _ in range(100):
                if await self._ping() is None:
                    break
                await asyncio.sleep(0.02)
        os.makedirs(self.state_dir, exist_ok=True)
        # Its stderr goes to a file: it outlives us, and our stderr may be a pipe that dies with us.
        with open(os.path.join(self.state_dir, "monitor.log"), "ab") as errlog:
            proc = subprocess.Popen(
                [sys.executable, "-m", "dockyard.shim.monitor", "--socket", self.sock,
                 "--state-dir", self.state_dir],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errlog,
                start_new_session=True, close_fds=True)
        assert proc.stdout is not None
        line = await asyncio.get_running_loop().run_in_executor(None, proc.stdout.readline)
        proc.stdout.close()
        if line.strip() != b"ready":
            raise errors.Unavailable(f"the monitor did not start (exit status {proc.poll()})")
        # The monitor lives on after us; don't let Popen's bookkeeping reap or warn about it.
        proc.returncode = 0

    async def _open(self, msg: dict[str, Any]) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, dict[str, Any]]:
        op = str(msg.get("op"))
        limit = self.timeouts.get(op, DEFAULT_REPLY_TIMEOUT)
        writer: asyncio.StreamWriter | None = None
        try:
            async with asyncio.timeout(limit):
                reader, writer = await asyncio.open_unix_connection(self.sock, limit=1 << 20)
                writer.write(protocol.encode(msg))
                line = await reader.readline()
        except BaseException as e:
            if writer is not None:
                writer.close()
            if isinstance(e, TimeoutError):
                raise MonitorTimeout(f"the container monitor ({self.sock}) did not answer {op!r} "
                                     f"within {limit:g}s: context deadline exceeded") from None
            raise
        if not line:
            writer.close()
            raise errors.Unavailable("the monitor closed the connection")
        reply = protocol.decode(line)
        if not reply.get("ok"):
            writer.close()
            kind = reply.get("kind", "Internal")
            raise (RuntimeFailure if kind == "Runtime" else KINDS.get(kind, errors.Internal))(reply.get("error", ""))
        return reader, writer, reply

    async def request(self, msg: dict[str, Any]) -> dict[str, Any]:
        _, writer, reply = await self._open(msg)
        writer.close()
        return reply

    async def open_stream(self, msg: dict[str, Any]) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, dict[str, Any]]:
        return await self._open(msg)

    async def subscribe(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            try:
                reader, writer, _ = await self._open({"op": "events"})
            except (OSError, errors.DockyardError):
                await asyncio.sleep(0.5)
                try:
                    await self.connect()
                except (OSError, errors.DockyardError) as e:
                    # keep trying: this generator is the daemon's only source of exit events
                    log.warning("reconnecting to the monitor: %s", e)
                continue
            yield {"reconnected": True}  # the caller reconciles: exits may have happened meanwhile
            while True:
                line = await reader.readline()
                if not line:
                    break
                yield json.loads(line)
            writer.close()
