"""Fast unit tests of linux/ logic that needs no root: option parsing, capability masks,
path resolution inside a root, cgroup path rules, the ctypes layer's error reporting."""

from __future__ import annotations

import errno
import os

import pytest

from dockyard.linux import caps, cgroups, mountopts, rootfs, syscalls


def test_mount_options_flags_propagation_and_data():
    o = mountopts.parse(["nosuid", "ro", "mode=755", "rprivate", "size=64k", "rw", "noexec"])
    assert o.flags == syscalls.MS_NOSUID | syscalls.MS_NOEXEC  # "rw" cleared "ro"
    assert o.propagation == [syscalls.MS_PRIVATE | syscalls.MS_REC]
    assert o.data == "mode=755,size=64k"
    rb = mountopts.parse(["rbind", "ro"])
    assert rb.recursive_bind and rb.flags & syscalls.MS_BIND and rb.flags & syscalls.MS_RDONLY
    assert "rslave" in mountopts.names() and "nodev" in mountopts.names()


def test_capability_masks():
    assert caps.mask(["CAP_CHOWN", "CAP_KILL"], "f") == (1 << 0) | (1 << 5)
    assert caps.mask(["sys_admin"], "f") == 1 << 21  # runc accepts names without CAP_
    assert caps.mask(None, "f") == 0
    with pytest.raises(ValueError, match="process.capabilities.bounding.*CAP_NOPE"):
        caps.mask(["CAP_NOPE"], "process.capabilities.bounding")


def test_secure_join_keeps_symlinks_inside_root(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "abs").symlink_to("/etc")
    (root / "up").symlink_to("../../../../outside")
    (root / "loop").symlink_to("loop")
    assert rootfs.secure_join(str(root), "/abs/passwd") == f"{root}/etc/passwd"
    assert rootfs.secure_join(str(root), "/up/x") == f"{root}/outside/x"
    assert rootfs.secure_join(str(root), "/../../etc") == f"{root}/etc"
    assert rootfs.secure_join(str(root), "/new/dir") == f"{root}/new/dir"
    with pytest.raises(OSError) as e:
        rootfs.secure_join(str(root), "/loop/x")
    assert e.value.errno == errno.ELOOP


def test_cgroup_paths_follow_runc_rules():
    rel = cgroups.resolve(None, "abc")
    absolute = cgroups.resolve("/dockyard-test/abc", "ignored")
    nested = cgroups.resolve("sub/abc", "ignored")
    assert rel.dirs and all(d.endswith("/abc") for d in rel.dirs.values())
    assert all(d.endswith("/dockyard-test/abc") for d in absolute.dirs.values())
    assert all(d.endswith("/sub/abc") for d in nested.dirs.values())
    own = cgroups._own()
    if rel.version == 1:  # relative paths nest under the caller's own cgroup
        mem = rel.dir_for("memory")
        if mem is not None and own.get("memory", "/") != "/":
            assert own["memory"] in mem
    with pytest.raises(ValueError, match="cgroupsPath"):
        cgroups.resolve("../escape", "x")
    assert cgroups.Cgroup.from_dict(rel.to_dict()).dirs == rel.dirs


def test_device_rules_are_checked():
    assert cgroups._device_rule({"allow": True, "type": "c", "major": 1, "minor": 3,
                                 "access": "rwm"}, "f") == "c 1:3 rwm"
    assert cgroups._device_rule({"allow": False, "access": "rwm"}, "f") == "a"
    assert cgroups._device_rule({"type": "b", "access": "r"}, "f") == "b *:* r"
    with pytest.raises(ValueError, match=r"linux.resources.devices\[2\].type"):
        cgroups._device_rule({"type": "x"}, "linux.resources.devices[2]")
    with pytest.raises(ValueError, match="access"):
        cgroups._device_rule({"type": "c", "access": "rwx"}, "f")


def test_resource_values_must_be_integers():
    cg = cgroups.Cgroup(1, {"memory": "/nonexistent/memory/x"})
    with pytest.raises(ValueError, match="linux.resources.memory.limit"):
        cgroups.apply(cg, {"memory": {"limit": "lots"}})
    with pytest.raises(ValueError, match="pids cgroup controller is not available"):
        cgroups.apply(cg, {"pids": {"limit": 5}})


def test_syscall_errors_name_the_call(tmp_path):
    with pytest.raises(OSError) as e:
        syscalls.umount2(str(tmp_path / "not-a-mount"))
    assert e.value.errno in (errno.EINVAL, errno.EPERM, errno.ENOENT)
    assert "umount2(" in e.value.strerror and "not-a-mount" in e.value.strerror


def test_setrlimit_through_libc():
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    pid = os.fork()
    if pid == 0:  # in a child: leave the test process's limits alone
        try:
            syscalls.setrlimit(4, 0, hard)  # RLIMIT_CORE
            os._exit(0 if resource.getrlimit(resource.RLIMIT_CORE) == (0, hard) else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_cgroup_v2_resources_on_a_fake_tree(tmp_path):
    d = tmp_path / "ctr"
    d.mkdir()
    for f in ("memory.max", "memory.swap.max", "memory.low", "cpu.weight", "cpu.max",
              "cpuset.cpus", "pids.max", "io.weight", "memory.oom.group"):
        (d / f).write_text("")
    cg = cgroups.Cgroup(2, {"": str(d)})
    cgroups.apply(cg, {
        "memory": {"limit": 1 << 20, "swap": 3 << 20, "reservation": 1 << 19},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1"},
        "pids": {"limit": 0},
        "unified": {"memory.oom.group": "1"},
    })
    got = {f.name: f.read_text() for f in d.iterdir()}
    assert got["memory.max"] == str(1 << 20) and got["memory.swap.max"] == str(2 << 20)
    assert got["memory.low"] == str(1 << 19) and got["cpu.max"] == "50000 100000"
    assert got["cpu.weight"] == "39"  # runc's shares → weight conversion
    assert got["cpuset.cpus"] == "0-1" and got["pids.max"] == "max"
    assert got["memory.oom.group"] == "1"
    with pytest.raises(ValueError, match="unified"):
        cgroups.apply(cg, {"unified": {"../escape": "1"}})
    with pytest.raises(ValueError, match="hugetlb.2MB.max is not supported"):
        cgroups.apply(cg, {"unified": {"hugetlb.2MB.max": "1"}})
