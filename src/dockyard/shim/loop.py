"""The monitor's event loop: the part of asyncio it uses, on ``selectors``, in one small module.

Why not asyncio: importing it keeps ~5 MB resident for good in a process whose whole job is
pumping a few pipes (it pulls in concurrent.futures, logging, inspect/ast/dis, typing,
subprocess and, if it can, ssl with OpenSSL). The monitor runs all day on every host, so it
uses this instead: ~11 MB resident where asyncio made it ~16 MB.

What there is (same names and meaning as asyncio's, so the monitor reads like asyncio code):
``run(coro)``, ``get_running_loop()`` with ``call_soon``/``call_later``/``add_reader``/
``remove_reader``/``add_writer``/``remove_writer``/``add_signal_handler``/``sock_accept``/
``create_future``; ``Future``, ``Task``/``ensure_future``, ``Event``, ``sleep``, ``gather``,
``wait(FIRST_COMPLETED)``, ``wait_for``; ``start_unix_server`` with ``StreamReader``
(``readline``, ``read``) and ``StreamWriter`` (``write``, ``drain``, ``close``,
``is_closing``).

Contract: one thread. A callback that raises is reported on stderr and the loop goes on. A
Task whose exception nobody retrieved is reported when it is collected. Cancelling a Future
throws ``CancelledError`` into the coroutine awaiting it; a Task is cancelled by cancelling
the Future it waits on. ``run`` returns when its coroutine does; other Tasks are abandoned
(the monitor exits then, and the kernel closes their sockets).

Signals: ``add_signal_handler`` installs a no-op Python handler and ``signal.set_wakeup_fd``
on a socket pair the loop watches: the handler runs later, in the loop, never re-entrantly
(what asyncio does). System calls are restarted (``siginterrupt(sig, False)``).
"""

from __future__ import annotations

import errno
import heapq
import selectors
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterable
from typing import Any, Generic, TypeVar

FIRST_COMPLETED = "FIRST_COMPLETED"
_HIGH_WATER = 64 * 1024  # drain() waits while more than this is buffered (as asyncio)
_READ_LIMIT = 1 << 20  # stop reading a connection while this much is unread
_LINGER = 5.0  # at most this long a closed connection waits for its peer to close (see _really_close)


class CancelledError(BaseException):
    """The awaited Future was cancelled (BaseException, as asyncio's)."""


def _report(what: str, exc: BaseException) -> None:
    import traceback  # only when something went wrong: it is not small

    sys.stderr.write(f"monitor loop: {what}\n")
    traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)


class Handle:
    """A scheduled callback; ``cancel()`` before it runs and it does not."""

    __slots__ = ("cb", "args", "cancelled", "when")

    def __init__(self, cb: Callable[..., Any], args: tuple[Any, ...], when: float = 0.0) -> None:
        self.cb = cb
        self.args = args
        self.cancelled = False
        self.when = when

    def cancel(self) -> None:
        self.cancelled = True

    def __lt__(self, other: Handle) -> bool:
        return self.when < other.when

    def run(self) -> None:
        try:
            self.cb(*self.args)
        except Exception as e:  # noqa: BLE001 - one callback's bug must not stop the loop
            _report(f"callback {getattr(self.cb, '__qualname__', self.cb)!r} failed", e)


TimerHandle = Handle

_PENDING, _DONE, _CANCELLED = 0, 1, 2
T = TypeVar("T")


class Future(Generic[T]):
    def __init__(self) -> None:
        self._state = _PENDING
        self._result: Any = None
        self._exc: BaseException | None = None
        self._callbacks: list[Callable[[Future], None]] = []
        self._retrieved = False

    def done(self) -> bool:
        return self._state != _PENDING

    def cancelled(self) -> bool:
        return self._state == _CANCELLED

    def result(self) -> Any:
        if self._state == _CANCELLED:
            raise CancelledError()
        if self._state == _PENDING:
            raise RuntimeError("the result is not ready")
        self._retrieved = True
        if self._exc is not None:
            raise self._exc
        return self._result

    def exception(self) -> BaseException | None:
        if self._state == _CANCELLED:
            raise CancelledError()
        if self._state == _PENDING:
            raise RuntimeError("the exception is not set")
        self._retrieved = True
        return self._exc

    def _finish(self, state: int) -> None:
        self._state = state
        callbacks, self._callbacks = self._callbacks, []
        loop = get_running_loop()
        for cb in callbacks:
            loop.call_soon(cb, self)

    def set_result(self, value: Any) -> None:
        if self._state != _PENDING:
            raise RuntimeError("the future is done already")
        self._result = value
        self._finish(_DONE)

    def set_exception(self, exc: BaseException) -> None:
        if self._state != _PENDING:
            raise RuntimeError("the future is done already")
        self._exc = exc
        self._finish(_DONE)

    def cancel(self) -> bool:
        if self._state != _PENDING:
            return False
        self._finish(_CANCELLED)
        return True

    def add_done_callback(self, cb: Callable[[Future], None]) -> None:
        if self._state != _PENDING:
            get_running_loop().call_soon(cb, self)
        else:
            self._callbacks.append(cb)

    def remove_done_callback(self, cb: Callable[[Future], None]) -> None:
        self._callbacks = [c for c in self._callbacks if c != cb]

    def __await__(self) -> Generator[Any, None, Any]:
        if self._state == _PENDING:
            yield self
        return self.result()

    def __del__(self) -> None:
        if self._exc is not None and not self._retrieved:
            try:
                _report(f"exception of {self!r} never retrieved", self._exc)
            except Exception:  # noqa: BLE001, S110 - at interpreter exit stderr may be gone
                pass


class Task(Future):
    """Runs a coroutine: each Future it awaits resumes it when done."""

    def __init__(self, coro: Coroutine[Any, Any, Any]) -> None:
        super().__init__()
        self._coro = coro
        self._waiting: Future | None = None
        get_running_loop().call_soon(self._step, None, None)

    def __repr__(self) -> str:
        return f"<Task {getattr(self._coro, '__qualname__', self._coro)}>"

    def cancel(self) -> bool:
        if self.done():
            return False
        if self._waiting is not None:
            return self._waiting.cancel()
        return False  # not waiting: it is about to run, and cannot be stopped in between

    def _step(self, value: Any, exc: BaseException | None) -> None:
        self._waiting = None
        try:
            fut = self._coro.send(value) if exc is None else self._coro.throw(exc)
        except StopIteration as e:
            self.set_result(e.value)
        except CancelledError:
            super().cancel()
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:  # noqa: BLE001 - kept for whoever awaits the task
            self.set_exception(e)
        else:
            if fut is None:  # a bare yield: sleep(0)
                get_running_loop().call_soon(self._step, None, None)
            else:
                self._waiting = fut
                fut.add_done_callback(self._wakeup)

    def _wakeup(self, fut: Future) -> None:
        try:
            value = fut.result()
        except BaseException as e:  # noqa: BLE001 - thrown into the coroutine
            self._step(None, e)
        else:
            self._step(value, None)


def ensure_future(aw: Awaitable[Any]) -> Future:
    if isinstance(aw, Future):
        return aw
    return Task(aw)  # type: ignore[arg-type]


class Event:
    def __init__(self) -> None:
        self._set = False
        self._waiters: list[Future] = []

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        if self._set:
            return
        self._set = True
        waiters, self._waiters = self._waiters, []
        for f in waiters:
            if not f.done():
                f.set_result(True)

    async def wait(self) -> bool:
        if self._set:
            return True
        f = Future()
        self._waiters.append(f)
        return await f


class _Yield:
    def __await__(self) -> Generator[None, None, None]:
        yield None


async def sleep(delay: float) -> None:
    if delay <= 0:
        await _Yield()
        return
    f = Future()
    h = get_running_loop().call_later(delay, lambda: f.done() or f.set_result(None))
    try:
        await f
    finally:
        h.cancel()


def gather(*aws: Awaitable[Any]) -> Future:
    """A Future of all results in order; the first exception fails it (the others run on)."""
    futs = [ensure_future(a) for a in aws]
    out = Future()
    left = [len(futs)]

    def one_done(f: Future) -> None:
        if out.done():
            if not f.cancelled():
                f.exception()  # retrieved: gather's caller has seen the first error
            return
        if f.cancelled():
            out.set_exception(CancelledError())
            return
        e = f.exception()
        if e is not None:
            out.set_exception(e)
            return
        left[0] -= 1
        if left[0] == 0:
            out.set_result([g.result() for g in futs])

    if not futs:
        out.set_result([])
    for f in futs:
        f.add_done_callback(one_done)
    return out


async def wait(aws: Iterable[Future], return_when: str = FIRST_COMPLETED) -> tuple[set[Future], set[Future]]:
    if return_when != FIRST_COMPLETED:
        raise ValueError("only FIRST_COMPLETED is supported")
    futs = {ensure_future(a) for a in aws}
    if not any(f.done() for f in futs):
        woke = Future()

        def wake(_: Future) -> None:
            if not woke.done():
                woke.set_result(None)

        for f in futs:
            f.add_done_callback(wake)
        try:
            await woke
        finally:
            for f in futs:
                f.remove_done_callback(wake)
    done = {f for f in futs if f.done()}
    return done, futs - done


async def wait_for(aw: Awaitable[Any], timeout: float) -> Any:
    """The awaitable's result, or TimeoutError (and it is cancelled) after ``timeout`` s."""
    fut = ensure_future(aw)
    if not fut.done():
        done, _ = await _wait_timeout(fut, timeout)
        if not done:
            fut.cancel()
            raise TimeoutError()
    return fut.result()


async def _wait_timeout(fut: Future, timeout: float) -> tuple[set[Future], set[Future]]:
    timer = Future()
    h = get_running_loop().call_later(timeout, lambda: timer.done() or timer.set_result(None))
    try:
        done, _ = await wait({fut, timer})
    finally:
        h.cancel()
    return ({fut}, set()) if fut in done else (set(), {fut})


# -- the loop ------------------------------------------------------------------------------------

class Loop:
    def __init__(self) -> None:
        self._sel = selectors.DefaultSelector()
        self._ready: deque[Handle] = deque()
        self._timers: list[Handle] = []
        self._fds: dict[int, list[Handle | None]] = {}  # fd -> [reader, writer]
        self._signals: dict[int, Handle] = {}
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None

    def time(self) -> float:
        return time.monotonic()

    def call_soon(self, cb: Callable[..., Any], *args: Any) -> Handle:
        h = Handle(cb, args)
        self._ready.append(h)
        return h

    def call_later(self, delay: float, cb: Callable[..., Any], *args: Any) -> Handle:
        h = Handle(cb, args, self.time() + max(delay, 0.0))
        heapq.heappush(self._timers, h)
        return h

    def create_future(self) -> Future:
        return Future()

    # file descriptors ------------------------------------------------------------------------------
    def _update(self, fd: int, slot: int, h: Handle | None) -> bool:
        pair = self._fds.get(fd)
        had = pair is not None and pair[slot] is not None
        if pair is None:
            if h is None:
                return False
            pair = self._fds[fd] = [None, None]
        pair[slot] = h
        mask = (selectors.EVENT_READ if pair[0] else 0) | (selectors.EVENT_WRITE if pair[1] else 0)
        try:
            key = self._sel.get_key(fd)
        except KeyError:
            key = None
        if mask == 0:
            del self._fds[fd]
            if key is not None:
                self._sel.unregister(fd)
        elif key is None:
            self._sel.register(fd, mask)
        elif key.events != mask:
            self._sel.modify(fd, mask)
        return had

    def add_reader(self, fd: int, cb: Callable[..., Any], *args: Any) -> None:
        self._update(fd, 0, Handle(cb, args))

    def remove_reader(self, fd: int) -> bool:
        return self._update(fd, 0, None)

    def add_writer(self, fd: int, cb: Callable[..., Any], *args: Any) -> None:
        self._update(fd, 1, Handle(cb, args))

    def remove_writer(self, fd: int) -> bool:
        return self._update(fd, 1, None)

    # signals -----------------------------------------------------------------------------------------
    def add_signal_handler(self, sig: int, cb: Callable[..., Any], *args: Any) -> None:
        if self._wake_r is None:
            self._wake_r, self._wake_w = socket.socketpair()
            for s in (self._wake_r, self._wake_w):
                s.setblocking(False)
            signal.set_wakeup_fd(self._wake_w.fileno())
            self.add_reader(self._wake_r.fileno(), self._read_signals)
        self._signals[sig] = Handle(cb, args)
        signal.signal(sig, _noop_handler)
        signal.siginterrupt(sig, False)

    def _read_signals(self) -> None:
        assert self._wake_r is not None
        while True:
            try:
                data = self._wake_r.recv(4096)
            except (BlockingIOError, InterruptedError):
                return
            if not data:
                return
            for sig in data:
                h = self._signals.get(sig)
                if h is not None:
                    self._ready.append(h)

    # sockets -----------------------------------------------------------------------------------------
    def sock_accept(self, sock: socket.socket) -> Future:
        """A Future of ``sock.accept()`` on a non-blocking listening socket."""
        fut = Future()
        fd = sock.fileno()

        def try_accept() -> None:
            if fut.done():
                self.remove_reader(fd)
                return
            try:
                conn = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                self.remove_reader(fd)
                fut.set_exception(e)
                return
            self.remove_reader(fd)
            fut.set_result(conn)

        fut.add_done_callback(lambda f: f.cancelled() and self.remove_reader(fd))
        self.add_reader(fd, try_accept)
        return fut

    # running -----------------------------------------------------------------------------------------
    def _run_once(self) -> None:
        if self._ready:
            timeout: float | None = 0.0
        elif self._timers:
            timeout = max(0.0, self._timers[0].when - self.time())
        else:
            timeout = None
        for key, mask in self._sel.select(timeout):
            pair = self._fds.get(key.fd)
            if pair is None:
                continue
            if mask & selectors.EVENT_READ and pair[0] is not None:
                self._ready.append(pair[0])
            if mask & selectors.EVENT_WRITE and pair[1] is not None:
                self._ready.append(pair[1])
        now = self.time()
        while self._timers and self._timers[0].when <= now:
            h = heapq.heappop(self._timers)
            if not h.cancelled:
                self._ready.append(h)
        for _ in range(len(self._ready)):  # only what is ready now: new ones wait a round
            h = self._ready.popleft()
            if not h.cancelled:
                h.run()

    def run_until_complete(self, fut: Future) -> Any:
        while not fut.done():
            self._run_once()
        return fut.result()

    def close(self) -> None:
        if self._wake_r is not None:
            signal.set_wakeup_fd(-1)
            for s in (self._wake_r, self._wake_w):
                assert s is not None
                s.close()
        self._sel.close()


def _noop_handler(signum: int, frame: object) -> None:
    """Python-level handler: the work is done by the loop, woken through the wakeup fd."""


_running: Loop | None = None


def get_running_loop() -> Loop:
    if _running is None:
        raise RuntimeError("no running event loop")
    return _running


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    global _running
    if _running is not None:
        raise RuntimeError("run() cannot be called from a running loop")
    _running = Loop()
    try:
        return _running.run_until_complete(Task(coro))
    finally:
        _running.close()
        _running = None


# -- streams ---------------------------------------------------------------------------------------

class _Conn:
    """One non-blocking stream socket: a read buffer filled while open, a write buffer drained
    whenever the socket takes more."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.loop = get_running_loop()
        self.rbuf = bytearray()
        self.eof = False
        self.reading = False
        self.wbuf = bytearray()
        self.closing = False  # close() was called, or the peer is gone for writing
        self.closed = False
        self.lost = False  # a send failed: the peer is gone
        self.waiter: Future | None = None  # a reader waiting for data
        self._linger: Handle | None = None
        self.drainers: list[Future] = []
        self._start_reading()

    def _start_reading(self) -> None:
        if not self.reading and not self.eof and not self.closed:
            self.reading = True
            self.loop.add_reader(self.fd, self._readable)

    def _stop_reading(self) -> None:
        if self.reading:
            self.reading = False
            self.loop.remove_reader(self.fd)

    def _wake_reader(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)
        self.waiter = None

    def _readable(self) -> None:
        try:
            data = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # ECONNRESET and the like: the peer is gone
            data = b""
        if data:
            self.rbuf += data
            if len(self.rbuf) > _READ_LIMIT:
                self._stop_reading()
        else:
            self.eof = True
            self._stop_reading()
        self._wake_reader()

    async def wait_data(self) -> None:
        self._start_reading()
        self.waiter = Future()
        await self.waiter

    def consumed(self) -> None:
        if len(self.rbuf) <= _READ_LIMIT // 2:
            self._start_reading()

    def write(self, data: bytes) -> None:
        if self.closing or self.closed or not data:
            return
        if not self.wbuf:
            try:
                n = self.sock.send(data)
            except (BlockingIOError, InterruptedError):
                n = 0
            except OSError:  # EPIPE, ECONNRESET: the peer is gone
                self._lost()
                return
            data = data[n:]
            if not data:
                return
            self.loop.add_writer(self.fd, self._writable)
        self.wbuf += data

    def _writable(self) -> None:
        try:
            n = self.sock.send(self.wbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._lost()
            return
        del self.wbuf[:n]
        if len(self.wbuf) <= _HIGH_WATER:
            self._wake_drainers()
        if not self.wbuf:
            self.loop.remove_writer(self.fd)
            if self.closing:
                self._really_close()

    def _wake_drainers(self) -> None:
        drainers, self.drainers = self.drainers, []
        for f in drainers:
            if not f.done():
                f.set_result(None)

    def _lost(self) -> None:
        self.lost = True
        self.wbuf.clear()
        self.closing = True
        self._really_close()

    def close(self) -> None:
        self.closing = True
        if not self.wbuf:
            self._really_close()

    def _really_close(self) -> None:
        """Close, lingering: shut our side down (the peer reads all we wrote, then EOF) and
        discard what the peer still sends until it closes or ``_LINGER`` passes, then close.

        A unix socket closed with unread input resets the connection: the peer's next read
        fails with ECONNRESET, and asyncio's StreamReader (the daemon's) raises that before the
        data it already buffered. The daemon sends STDIN_EOF as soon as its client half-closes;
        when that crossed the end of a fast exec, the daemon lost the exec's output and exit
        frame (``docker exec -i c sh -c 'echo hi; exit 4' </dev/null`` printed nothing, ~3% on
        a loaded host). The same trap as HTTP servers' lingering close."""
        if self.closed:
            return
        self.closed = True
        self.closing = True
        self._stop_reading()
        self.loop.remove_writer(self.fd)
        self.eof = True
        self._wake_reader()
        self._wake_drainers()
        if self.lost:
            self.sock.close()
            return
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.sock.close()
            return
        self.loop.add_reader(self.fd, self._linger_read)
        self._linger = self.loop.call_later(_LINGER, self._linger_done)

    def _linger_read(self) -> None:
        try:
            data = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._linger_done()

    def _linger_done(self) -> None:
        if self.sock.fileno() < 0:
            return
        if self._linger is not None:
            self._linger.cancel()
        self.loop.remove_reader(self.fd)
        self.sock.close()


class StreamReader:
    def __init__(self, conn: _Conn) -> None:
        self._c = conn

    async def readline(self) -> bytes:
        c = self._c
        while b"\n" not in c.rbuf and not c.eof:
            await c.wait_data()
        i = c.rbuf.find(b"\n")
        n = len(c.rbuf) if i < 0 else i + 1
        line = bytes(c.rbuf[:n])
        del c.rbuf[:n]
        c.consumed()
        return line

    async def read(self, n: int = -1) -> bytes:
        c = self._c
        if n < 0:
            while not c.eof:
                await c.wait_data()
            n = len(c.rbuf)
        else:
            while not c.rbuf and not c.eof:
                await c.wait_data()
        data = bytes(c.rbuf[:n])
        del c.rbuf[:n]
        c.consumed()
        return data


class StreamWriter:
    def __init__(self, conn: _Conn) -> None:
        self._c = conn

    def write(self, data: bytes) -> None:
        self._c.write(data)

    async def drain(self) -> None:
        c = self._c
        while len(c.wbuf) > _HIGH_WATER and not c.closed:
            f = Future()
            c.drainers.append(f)
            await f
        if c.lost:
            raise ConnectionResetError("connection lost")

    def close(self) -> None:
        self._c.close()

    def is_closing(self) -> bool:
        return self._c.closing or self._c.closed


class Server:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def close(self) -> None:
        get_running_loop().remove_reader(self.sock.fileno())
        self.sock.close()


async def start_unix_server(handler: Callable[[StreamReader, StreamWriter], Coroutine[Any, Any, None]],
                            path: str) -> Server:
    """Listen on ``path``; each connection runs ``handler(reader, writer)`` as a Task."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.bind(path)
        sock.listen(128)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    loop = get_running_loop()

    def accept() -> None:
        for _ in range(64):
            try:
                conn, _addr = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    return  # the connection waits in the backlog for a descriptor
                raise
            conn.setblocking(False)
            c = _Conn(conn)
            Task(handler(StreamReader(c), StreamWriter(c)))

    loop.add_reader(sock.fileno(), accept)
    return Server(sock)


__all__ = ["FIRST_COMPLETED", "CancelledError", "Event", "Future", "Loop", "Server", "StreamReader",
           "StreamWriter", "Task", "TimerHandle", "ensure_future", "gather", "get_running_loop", "run",
           "sleep", "start_unix_server", "wait", "wait_for"]
