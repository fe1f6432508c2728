"""The libseccomp binding: profiles compile (Docker's own too), bad fields are named, and a
loaded filter denies what it says (in a forked child)."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from dockyard.linux import seccomp

DOCKER_PROFILE = Path("/work/shared/specs/docker/seccomp-default.json")


def test_compile_simple_and_bad_profiles():
    prof = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["mkdir", "no_such_syscall_xyz"], "action": "SCMP_ACT_ERRNO"}]}
    f = seccomp.build(prof)
    assert f.ctx and f.default == seccomp.ACT_ALLOW
    f.release()
    prog = seccomp.compile(prof)
    assert prog.bpf and len(prog.bpf) % 8 == 0
    with pytest.raises(ValueError, match="linux.seccomp.defaultAction"):
        seccomp.compile({"defaultAction": "SCMP_ACT_NOTIFY"})
    with pytest.raises(ValueError, match=r"architectures\[0\]"):
        seccomp.compile({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]})
    with pytest.raises(ValueError, match=r"syscalls\[0\].args\[0\]"):
        seccomp.compile({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 9, "value": 1, "op": "SCMP_CMP_EQ"}]}]})


@pytest.mark.skipif(not DOCKER_PROFILE.exists(), reason="Docker's profile is not here")
def test_docker_default_profile_compiles_and_is_cached(tmp_path):
    prof = json.loads(DOCKER_PROFILE.read_text())
    prof["architectures"] = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    f = seccomp.build(prof)
    assert f.default == (0x00050000 | prof.get("defaultErrnoRet", 1))
    f.release()
    cache = tmp_path / "cache"
    first = seccomp.compile(prof, cache_dir=str(cache))
    files = list(cache.iterdir())
    assert len(files) == 1 and files[0].read_bytes() == first.bpf
    assert seccomp.compile(prof, cache_dir=str(cache)).bpf == first.bpf
    prof["defaultErrnoRet"] = 38  # a different profile is a different program
    assert seccomp.compile(prof, cache_dir=str(cache)).bpf != first.bpf
    assert len(list(cache.iterdir())) == 2


def test_loaded_filter_denies_in_a_child(tmp_path):
    f = seccomp.compile({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EACCES},
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]})
    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            from dockyard.linux import syscalls

            syscalls.prctl(syscalls.PR_SET_NO_NEW_PRIVS, 1)
            seccomp.load(f)
            try:
                os.mkdir(tmp_path / "d")
                code = 1
            except PermissionError:
                code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert not (tmp_path / "d").exists()
    os.mkdir(tmp_path / "d")  # the parent is unaffected
