"""Interactive terminals through the real docker CLI under a pty (pexpect): run -it, exec -it, attach.

Each checks the prompt, a command's output, that the pty's size follows the client's terminal
(at start and after a resize: SIGWINCH → POST .../resize), and that the session's end reaches
the CLI's exit status (Ctrl-D at the shell ends it with the last command's status).
"""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

pexpect = pytest.importorskip("pexpect")
pytestmark = pytest.mark.root


def spawn(engine: Any, *args: str, rows: int, cols: int) -> Any:
    return pexpect.spawn("docker", list(args), env=engine.env(), timeout=20, dimensions=(rows, cols))


def expect_size(child: Any, rows: int, cols: int) -> None:
    # stty prints "rows cols"; a marker proves the line is the answer, not the echoed command
    child.sendline("echo S=$(stty size)=")
    child.expect(f"S={rows} {cols}=")


def test_run_it_prompt_resize_ctrl_d(engine: Any) -> None:
    child = spawn(engine, "run", "--rm", "-it", "busybox", "sh", rows=30, cols=100)
    try:
        child.expect("# ")
        expect_size(child, 30, 100)
        child.sendline("echo $((40+2))")
        child.expect("42")
        child.setwinsize(40, 120)  # the CLI sees SIGWINCH and resizes the container's tty
        for _ in range(20):  # the resize request races the next command: retry the read only
            child.sendline("echo S=$(stty size)=")
            if child.expect(["S=40 120=", r"S=\d+ \d+="]) == 0:
                break
        else:
            pytest.fail("the container's tty never took the new size")
        child.sendline("sh -c 'exit 3'")
        child.expect("# ")
        child.sendeof()  # Ctrl-D: the shell exits with the last command's status
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 3


def test_exec_it_prompt_resize_exit(engine: Any) -> None:
    cp = engine.docker("run", "-d", "--name", "ttyweb", "busybox", "sleep", "300")
    assert cp.returncode == 0, cp.stderr
    try:
        child = spawn(engine, "exec", "-it", "ttyweb", "sh", rows=25, cols=90)
        try:
            child.expect("# ")
            expect_size(child, 25, 90)  # the exec's ConsoleSize, or the CLI's first resize
            child.sendline("tty")
            child.expect("/dev/pts/")
            child.setwinsize(33, 77)
            for _ in range(20):
                child.sendline("echo S=$(stty size)=")
                if child.expect(["S=33 77=", r"S=\d+ \d+="]) == 0:
                    break
            else:
                pytest.fail("the exec's tty never took the new size")
            child.sendline("exit 4")
            child.expect(pexpect.EOF)
        finally:
            child.close()
        assert child.exitstatus == 4
        # the container's own process is untouched by the exec's end
        assert engine.docker("inspect", "-f", "{{.State.Running}}", "ttyweb").stdout == b"true\n"
    finally:
        engine.docker("rm", "-f", "ttyweb")


def test_attach_to_a_tty_container(engine: Any) -> None:
    cp = engine.docker("run", "-dit", "--name", "ttyatt", "busybox", "sh")
    assert cp.returncode == 0, cp.stderr
    try:
        child = spawn(engine, "attach", "ttyatt", rows=20, cols=70)
        try:
            expect_size(child, 20, 70)  # attach resizes the container's tty to the client's
            child.sendline("echo hi$((1+1))")
            child.expect("hi2")
            child.sendline("exit 6")
            child.expect(pexpect.EOF)
        finally:
            child.close()
        assert child.exitstatus == 6
        state = subprocess.run(["docker", "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "ttyatt"],
                               env=engine.env(), capture_output=True)
        assert state.stdout == b"exited 6\n"
    finally:
        engine.docker("rm", "-f", "ttyatt")
