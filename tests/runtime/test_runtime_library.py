"""The in-process API the engine's monitor uses (no CLI): create/start/state/kill/exec/delete
as plain functions, with errors from the project's vocabulary (root, real containers)."""

from __future__ import annotations

import os
import time

import pytest
from runtime_fixtures import bundle_fixture, cgroup_dirs_for  # noqa: F401 - pytest fixture

from dockyard.errors import AlreadyExists, Conflict, NotFound
from dockyard.runtime import create, delete, exec, kill, start, state
from dockyard.runtime.errors import ExecutableNotFound

pytestmark = pytest.mark.root


def _run_in_child(fn) -> int:
    """Run ``fn`` in a forked child (a fresh subreaper, like the monitor); its exit status."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            from dockyard.linux import syscalls

            syscalls.prctl(syscalls.PR_SET_CHILD_SUBREAPER, 1)
            code = fn()
        except BaseException as e:  # noqa: BLE001
            os.write(2, f"{type(e).__name__}: {e}\n".encode())
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_library_lifecycle(bundle, tmp_path):
    root = str(tmp_path / "state")
    out = tmp_path / "out"
    bundle.config["mounts"].append({"destination": "/out", "type": "bind",
                                    "source": str(tmp_path), "options": ["rbind"]})
    bundle.write(args=["/bin/sh", "-c", "echo started > /out/out; sleep 30"])

    def scenario() -> int:
        pid = create.create(root, "lib", str(bundle.path))
        assert state.status(root, state.load(root, "lib")) == "created"
        with pytest.raises(AlreadyExists):
            create.create(root, "lib", str(bundle.path))
        start.start(root, "lib")
        with pytest.raises(Conflict):
            start.start(root, "lib")
        epid = exec.exec_process(root, "lib", {"args": ["/bin/true"], "cwd": "/",
                                               "env": ["PATH=/bin"]})
        assert os.waitstatus_to_exitcode(os.waitpid(epid, 0)[1]) == 0
        with pytest.raises(ExecutableNotFound):
            exec.exec_process(root, "lib", {"args": ["nope"], "cwd": "/", "env": ["PATH=/bin"]})
        kill.kill(root, "lib", 9)
        _, status = os.waitpid(pid, 0)  # the init is our direct child
        assert os.waitstatus_to_exitcode(status) == -9
        assert state.public(root, state.load(root, "lib"))["status"] == "stopped"
        delete.delete(root, "lib")
        with pytest.raises(NotFound):
            state.load(root, "lib")
        return 0

    assert _run_in_child(scenario) == 0
    assert out.read_text() == "started\n"
    assert cgroup_dirs_for("lib") == []


def test_library_stdio_fds_and_signals(bundle, tmp_path):
    """An in-process caller hands its own pipes as the container's stdio; the container
    starts with default signal dispositions even though Python ignores SIGPIPE."""
    root = str(tmp_path / "state")
    bundle.write(args=["/bin/sh", "-c", "read x; echo got=$x; echo err >&2; "
                       "grep -E 'SigIgn|SigBlk' /proc/self/status"])

    def scenario() -> int:
        import signal

        signal.signal(signal.SIGTERM, lambda *_: None)  # a caller with its own handlers
        in_r, in_w = os.pipe()
        out_r, out_w = os.pipe()
        pid = create.create(root, "io", str(bundle.path), stdio=(in_r, out_w, out_w),
                            barrier=False)
        for fd in (in_r, out_w):
            os.close(fd)
        os.write(in_w, b"hello\n")
        os.close(in_w)
        out = b""
        while chunk := os.read(out_r, 4096):
            out += chunk
        os.waitpid(pid, 0)
        delete.delete(root, "io")
        lines = out.decode().split("\n")
        assert lines[0] == "got=hello" and lines[1] == "err", out
        ign = int(out.decode().split("SigIgn:\t")[1].split()[0], 16)
        assert not ign & (1 << 12) and not ign & (1 << 24), out  # SIGPIPE, SIGXFSZ default
        assert "SigBlk:\t0000000000000000" in out.decode(), out
        return 0

    assert _run_in_child(scenario) == 0



def test_created_init_holds_none_of_its_creators_fds(bundle, tmp_path):
    """An init waiting at the barrier keeps none of its creator's fds (in the engine: the
    monitor's listening socket, other containers' log files), only stdio and exec.fifo."""
    root = str(tmp_path / "state")
    bundle.write(args=["/bin/true"])

    def scenario() -> int:
        r, w = os.pipe()  # CLOEXEC, as Python makes every fd: fork copies it all the same
        pid = create.create(root, "fds", str(bundle.path))
        try:
            # the init closes its two sync pipes just after it reports ready: allow it a moment
            for _ in range(100):
                held = {int(fd): os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
                extra = {fd: t for fd, t in held.items() if fd > 2 and not t.endswith("exec.fifo")}
                if not extra:
                    break
                time.sleep(0.02)
        finally:
            delete.delete(root, "fds", force=True)
            os.close(r)
            os.close(w)
        if extra:
            os.write(2, f"init holds {extra}\n".encode())
        return 0 if not extra and r not in held and w not in held else 3

    assert _run_in_child(scenario) == 0
