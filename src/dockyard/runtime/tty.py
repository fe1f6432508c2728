"""Foreground terminals: what ``run``/``exec`` do when ``process.terminal`` is set and no
``--console-socket`` was given (runc allocates the pty itself then, and so do we).

``ConsoleListener(root)`` binds a private console socket under ``root`` (the path is what
``create``/``exec_process`` connect to); ``receive()`` takes the pty master the container
sends and removes the socket. ``proxy(master, pid)`` puts our terminal in raw mode (when
stdin is one), keeps the pty's window size in step with ours (SIGWINCH), copies stdin →
master and master → stdout until the container's side closes, then restores the terminal.
Lifecycle: listener created before the container, closed (``close``) in every case.
"""

from __future__ import annotations

import os


class ConsoleListener:
    def __init__(self, root: str) -> None:
        import _socket

        os.makedirs(root, mode=0o700, exist_ok=True)
        self.path = f"{root}/.console-{os.getpid()}.sock"
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        self._sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        self._sock.bind(self.path)
        self._sock.listen(1)

    def receive(self) -> int:
        """The pty master fd the container sent (SCM_RIGHTS)."""
        import _socket

        fd, _ = self._sock._accept()  # type: ignore[attr-defined]
        c = _socket.socket(fileno=fd)
        try:
            _, anc, _, _ = c.recvmsg(4096, _socket.CMSG_SPACE(4))
        finally:
            c.close()
        for level, typ, data in anc:
            if level == _socket.SOL_SOCKET and typ == _socket.SCM_RIGHTS and len(data) >= 4:
                return int.from_bytes(data[:4], "little")
        raise OSError(5, "console socket: no file descriptor received")

    def close(self) -> None:
        self._sock.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def _copy_winsize(master: int) -> None:
    import fcntl
    import termios

    try:
        ws = fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(master, termios.TIOCSWINSZ, ws)
    except OSError:
        pass


def proxy(master: int) -> None:
    """Copy between our stdio and ``master`` until the container's pty closes."""
    import select

    saved = None
    if os.isatty(0):
        import termios
        import tty

        saved = termios.tcgetattr(0)
        tty.setraw(0)
        _copy_winsize(master)
        import _signal

        _signal.signal(28, lambda *_: _copy_winsize(master))  # SIGWINCH
    try:
        p = select.poll()
        p.register(master, select.POLLIN)
        p.register(0, select.POLLIN)
        stdin_open = True
        while True:
            try:
                events = p.poll()
            except InterruptedError:
                continue
            for fd, ev in events:
                if fd == master:
                    try:
                        data = os.read(master, 65536)
                    except OSError:  # EIO: every slave fd is closed, the process is gone
                        data = b""
                    if not data:
                        return
                    os.write(1, data)
                elif stdin_open:
                    data = os.read(0, 65536) if ev & (select.POLLIN | select.POLLHUP) else b""
                    if not data:
                        stdin_open = False
                        p.unregister(0)
                        os.write(master, b"\x04")  # EOF for a canonical-mode reader
                    else:
                        os.write(master, data)
    finally:
        if saved is not None:
            import termios

            termios.tcsetattr(0, termios.TCSADRAIN, saved)
        os.close(master)
