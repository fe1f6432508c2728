"""Shared fixtures.

Tests marked ``root`` need root and a real kernel; they skip cleanly otherwise.
``busybox_rootfs`` builds a minimal root filesystem from Debian's static busybox once per
session; tests copy or overlay it, never modify it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)


def find_static_busybox() -> str | None:
    for cand in ("/bin/busybox", "/usr/bin/busybox", shutil.which("busybox") or ""):
        if cand and os.path.exists(cand):
            out = subprocess.run(["ldd", cand], capture_output=True, text=True)
            if out.returncode != 0:  # "not a dynamic executable"
                return cand
    return None


def make_busybox_rootfs(dest: Path) -> Path:
    """Lay out a busybox root filesystem at ``dest`` (bin/ with applet links, etc/passwd...)."""
    bb = find_static_busybox()
    if bb is None:
        pytest.skip("busybox-static is not installed (apt-get install busybox-static)")
    for d in ("bin", "etc", "tmp", "proc", "sys", "dev", "root", "var/www"):
        (dest / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(bb, dest / "bin" / "busybox")
    applets = subprocess.run([bb, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for a in applets:
        link = dest / "bin" / a
        if not link.exists() and not link.is_symlink():
            link.symlink_to("busybox")
    (dest / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
    )
    (dest / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    (dest / "tmp").chmod(0o1777)
    return dest


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A read-only-by-convention busybox rootfs shared by the session's tests."""
    return make_busybox_rootfs(tmp_path_factory.mktemp("busybox") / "rootfs")


@pytest.fixture(scope="session", autouse=True)
def _remove_empty_parent_cgroups() -> object:
    """The daemons and runtimes the tests start nest containers and builds under ``dockyard/``
    and ``dockyard-build/`` below this process's cgroup, and leave those parents behind as
    dockerd leaves ``docker/``. At the end of the session remove them when empty: rmdir of a
    cgroup fails while it has children or tasks, so one still in use is left alone."""
    yield
    if os.geteuid() != 0:
        return
    from dockyard.linux import cgroups

    try:
        bases = [os.path.dirname(os.path.dirname(d)) for d in cgroups.resolve("dockyard/x", "x").dirs.values()]
    except OSError:
        return
    # on a hybrid host runc (compared against in some tests) also uses the cgroup2 "unified" tree
    with open("/proc/self/cgroup") as f:
        for line in f:
            if line.startswith("0::") and os.path.isdir("/sys/fs/cgroup/unified"):
                bases.append(os.path.normpath("/sys/fs/cgroup/unified/" + line[3:].strip()))
    for base in bases:
        for name in ("dockyard", "dockyard-build"):
            try:
                os.rmdir(os.path.join(base, name))
            except OSError:
                pass
