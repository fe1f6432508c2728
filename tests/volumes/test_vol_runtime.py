"""The whole volume path with a real container: plans -> volumes mounted -> OCI mounts ->
``dockyard-runtime run`` of a busybox bundle -> the data is on the host, nothing left mounted.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dockyard.volumes import oci, spec
from dockyard.volumes.service import VolumeService

RUNTIME = str(Path(sys.executable).parent / "dockyard-runtime")
pytestmark = pytest.mark.root


def _mounts_under(path: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [ln.split()[4] for ln in f if ln.split()[4].startswith(str(path))]


def _run(state: Path, bundle: Path, cid: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([RUNTIME, "--root", str(state), "run", "--bundle", str(bundle), cid],
                          capture_output=True, timeout=60, stdin=subprocess.DEVNULL)


def test_container_writes_into_volumes(tmp_path: Path, busybox_rootfs: Path) -> None:
    from dockyard.runtime.spec import default_spec

    bundle = tmp_path / "bundle"
    rootfs = bundle / "rootfs"
    shutil.copytree(busybox_rootfs, rootfs, symlinks=True)
    (rootfs / "etc" / "app").mkdir()
    (rootfs / "etc" / "app" / "conf").write_text("from the image\n")
    hostdir = tmp_path / "host"
    hostdir.mkdir()
    (hostdir / "ro-file").write_text("host\n")
    vols = VolumeService(tmp_path / "volumes")
    vols.create("scratch", driver_opts={"type": "tmpfs", "device": "tmpfs", "o": "size=2m"})
    state = tmp_path / "state"
    script = ("echo kept > /data/f && cat /etc/app/conf > /data/copied && "
              "! touch /ro/x 2>/dev/null && cat /ro/ro-file > /data/ro && "
              "echo t > /scratch/t && grep -E ' /(run|scratch|data|etc/app) ' /proc/mounts > /data/mounts")
    cids = ["vrt1", "vrt2"]
    try:
        plans = vols.prepare(spec.plan_mounts(
            {"Binds": ["data:/data", f"{hostdir}:/ro:ro"], "Tmpfs": {"/run": "size=1m"},
             "Mounts": [{"Type": "volume", "Source": "scratch", "Target": "/scratch"}]}, ["/etc/app"]), cids[0])
        live = vols.mount_all(plans, cids[0], rootfs)
        cfg = default_spec()
        cfg["process"]["terminal"] = False
        cfg["process"]["args"] = ["sh", "-c", script]
        cfg["mounts"] += oci.oci_mounts(live)
        (bundle / "config.json").write_text(json.dumps(cfg))
        p = _run(state, bundle, cids[0])
        assert p.returncode == 0, p.stderr.decode()
        data = Path(vols.get("data").mountpoint)
        assert (data / "f").read_text() == "kept\n"
        assert (data / "copied").read_text() == "from the image\n"  # copy-up of /etc/app
        assert (data / "ro").read_text() == "host\n" and not (hostdir / "x").exists()
        mounts = (data / "mounts").read_text()
        assert " /run tmpfs rw,nosuid,nodev,noexec" in mounts and "size=1024k" in mounts
        assert " /scratch tmpfs " in mounts
        vols.unmount_all(live, cids[0])
        assert _mounts_under(tmp_path / "volumes") == []  # the tmpfs volume went with its last user

        # a second container sees the named volume's data, and a fresh tmpfs volume
        live2 = vols.mount_all(plans, cids[1], rootfs)
        cfg["process"]["args"] = ["sh", "-c", "cat /data/f > /data/second; ls /scratch > /data/scratch-ls"]
        cfg["mounts"] = default_spec()["mounts"] + oci.oci_mounts(live2)
        (bundle / "config.json").write_text(json.dumps(cfg))
        p = _run(state, bundle, cids[1])
        assert p.returncode == 0, p.stderr.decode()
        assert (data / "second").read_text() == "kept\n" and (data / "scratch-ls").read_text() == ""
        vols.unmount_all(live2, cids[1])
        assert len(vols.remove_anonymous(live2)) == 1
    finally:
        for cid in cids:
            subprocess.run([RUNTIME, "--root", str(state), "delete", "-f", cid], capture_output=True)
        for mp in sorted(_mounts_under(tmp_path), reverse=True):
            os.system(f"umount -l {mp}")  # noqa: S605 - only paths under tmp_path
    assert _mounts_under(tmp_path) == []
