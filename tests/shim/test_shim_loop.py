"""The monitor's event loop (dockyard.shim.loop): futures, tasks, timers, fds, signals, streams."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dockyard.shim import loop as aio


def test_tasks_futures_gather_and_order() -> None:
    seen: list[str] = []

    async def child(name: str, delay: float) -> str:
        await aio.sleep(delay)
        seen.append(name)
        return name

    async def main() -> Any:
        loop = aio.get_running_loop()
        fut = loop.create_future()
        loop.call_later(0.02, fut.set_result, 42)
        got = await fut
        results = await aio.gather(child("slow", 0.03), child("fast", 0.0), child("mid", 0.01))
        return got, results

    assert aio.run(main()) == (42, ["slow", "fast", "mid"])
    assert seen == ["fast", "mid", "slow"]  # timers fire in time order
    with pytest.raises(RuntimeError, match="no running event loop"):
        aio.get_running_loop()


def test_exceptions_propagate_and_gather_fails_on_the_first() -> None:
    async def boom() -> None:
        await aio.sleep(0)
        raise ValueError("bad")

    async def main() -> str:
        with pytest.raises(ValueError, match="bad"):
            await aio.ensure_future(boom())
        with pytest.raises(ValueError, match="bad"):
            await aio.gather(aio.sleep(0.01), boom())
        return "ok"

    assert aio.run(main()) == "ok"


def test_wait_first_completed_wait_for_timeout_and_cancel() -> None:
    async def main() -> list[Any]:
        out: list[Any] = []
        slow = aio.ensure_future(aio.sleep(5))
        quick = aio.ensure_future(aio.sleep(0.01))
        done, pending = await aio.wait({slow, quick}, return_when=aio.FIRST_COMPLETED)
        out.append((done == {quick}, pending == {slow}))
        never = aio.get_running_loop().create_future()
        try:
            await aio.wait_for(never, 0.02)
        except TimeoutError:
            out.append("timeout")
        out.append(never.cancelled())
        waiter = aio.get_running_loop().create_future()

        async def awaits() -> str:
            try:
                await waiter
            except aio.CancelledError:
                return "cancelled inside"
            return "not cancelled"

        t = aio.ensure_future(awaits())
        await aio.sleep(0)
        waiter.cancel()
        out.append(await t)
        slow.cancel()
        return out

    assert aio.run(main()) == [(True, True), "timeout", True, "cancelled inside"]


def test_event_and_a_failing_callback_does_not_stop_the_loop(capfd: pytest.CaptureFixture[str]) -> None:
    async def main() -> bool:
        ev = aio.Event()
        loop = aio.get_running_loop()
        loop.call_soon(lambda: 1 / 0)
        h = loop.call_later(0.01, lambda: pytest.fail("a cancelled timer ran"))
        h.cancel()
        loop.call_later(0.02, ev.set)
        await ev.wait()
        return ev.is_set() and await ev.wait()

    assert aio.run(main()) is True
    assert "ZeroDivisionError" in capfd.readouterr().err


def test_readers_writers_on_a_pipe_and_signals() -> None:
    async def main() -> tuple[bytes, list[int]]:
        loop = aio.get_running_loop()
        r, w = os.pipe()
        os.set_blocking(r, False)
        got = loop.create_future()

        def readable() -> None:
            got.set_result(os.read(r, 100))
            loop.remove_reader(r)

        loop.add_reader(r, readable)
        writable = loop.create_future()
        loop.add_writer(w, lambda: writable.done() or writable.set_result(None))
        await writable
        assert loop.remove_writer(w) and not loop.remove_writer(w)
        os.write(w, b"hello")
        data = await got
        os.close(r)
        os.close(w)
        sigs: list[int] = []
        hit = aio.Event()
        loop.add_signal_handler(signal.SIGUSR1, lambda: (sigs.append(signal.SIGUSR1), hit.set()))
        os.kill(os.getpid(), signal.SIGUSR1)
        await aio.wait_for(aio.ensure_future(hit.wait()), 5)
        return data, sigs

    old = signal.getsignal(signal.SIGUSR1)
    try:
        assert aio.run(main()) == (b"hello", [signal.SIGUSR1])
    finally:
        signal.signal(signal.SIGUSR1, old)


def test_unix_server_streams_and_sock_accept(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sock")
    big = os.urandom(3 << 20)  # more than the socket buffers: exercises write buffering

    async def handler(r: aio.StreamReader, w: aio.StreamWriter) -> None:
        line = await r.readline()
        if line == b"big\n":
            w.write(big)
            w.close()  # after the buffered data is sent
            return
        rest = await r.read()  # to EOF
        w.write(line.upper() + rest[::-1])
        await w.drain()
        w.close()

    async def main() -> tuple[bytes, bytes, bool]:
        loop = aio.get_running_loop()
        server = await aio.start_unix_server(handler, path)

        # blocking clients in child processes (this thread runs the loop): a line and the rest
        # to EOF, answered upper-cased and reversed; "big" answered with 3 MiB then close()
        procs = [subprocess.Popen([sys.executable, "-c", (
            "import socket,sys\n"
            f"s=socket.socket(socket.AF_UNIX); s.connect({path!r}); s.sendall({m!r}); s.shutdown(1)\n"
            "b=b''\n"
            "while (c:=s.recv(65536)): b+=c\n"
            "sys.stdout.buffer.write(b)\n")], stdout=subprocess.PIPE) for m in (b"hi there\nabc", b"big\n")]
        outs = []
        for p in procs:
            assert p.stdout is not None
            fd = p.stdout.fileno()
            os.set_blocking(fd, False)
            chunks: list[bytes] = []
            eof = loop.create_future()

            def readable(fd: int = fd, chunks: list[bytes] = chunks, eof: aio.Future[None] = eof) -> None:
                data = os.read(fd, 1 << 16)
                if data:
                    chunks.append(data)
                else:
                    loop.remove_reader(fd)
                    eof.set_result(None)

            loop.add_reader(fd, readable)
            await eof
            p.stdout.close()
            p.wait()
            outs.append(b"".join(chunks))
        # sock_accept on a listening socket of our own
        lsock = socket.socket(socket.AF_UNIX)
        lsock.bind(str(tmp_path / "a.sock"))
        lsock.listen(1)
        lsock.setblocking(False)
        acc = loop.sock_accept(lsock)
        c = socket.socket(socket.AF_UNIX)
        c.connect(str(tmp_path / "a.sock"))
        conn, _ = await aio.wait_for(acc, 5)
        ok = isinstance(conn, socket.socket)
        for s in (conn, c, lsock):
            s.close()
        server.close()
        return outs[0], outs[1], ok

    small, large, ok = aio.run(main())
    assert small == b"HI THERE\ncba"
    assert large == big
    assert ok


def test_the_monitor_imports_neither_asyncio_nor_ssl() -> None:
    out = subprocess.run([sys.executable, "-c", "import sys, dockyard.shim.monitor; "
                          "print(sorted(m for m in ('asyncio', 'ssl', 'argparse', 'logging') if m in sys.modules))"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_close_with_unread_input_does_not_reset_the_peer(tmp_path: Path) -> None:
    """A connection closed while the peer's late bytes sit unread (the daemon's STDIN_EOF
    crossing the end of a fast exec) must end with EOF after our data, not ECONNRESET: asyncio's
    reader raises that before the data it buffered, and the daemon lost the exec's output."""
    import time

    path = str(tmp_path / "s.sock")

    async def handler(r: aio.StreamReader, w: aio.StreamWriter) -> None:
        await r.readline()
        time.sleep(0.3)  # block the loop: the client's late bytes arrive and stay unread
        w.write(b"payload")
        w.close()

    async def main() -> bytes:
        server = await aio.start_unix_server(handler, path)
        p = subprocess.Popen([sys.executable, "-c", (
            "import socket,sys,time\n"
            f"s=socket.socket(socket.AF_UNIX); s.connect({path!r}); s.sendall(b'go\\n')\n"
            "time.sleep(0.05); s.sendall(b'late-stdin-eof')\n"
            "b=b''\n"
            "try:\n"
            "    while (c:=s.recv(65536)): b+=c\n"
            "except ConnectionResetError:\n"
            "    b+=b'|RESET'\n"
            "sys.stdout.buffer.write(b)\n")], stdout=subprocess.PIPE)
        while p.poll() is None:
            await aio.sleep(0.02)
        assert p.stdout is not None
        out = p.stdout.read()
        p.stdout.close()
        server.close()
        return out

    assert aio.run(main()) == b"payload"
