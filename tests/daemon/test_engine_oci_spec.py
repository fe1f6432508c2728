from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.daemon import oci_spec, seccomp
from dockyard.daemon.containers import merge_config, parse_signal
from dockyard.errors import InvalidArgument


def inputs(tmp_path: Path, config: dict, host_config: dict, **kw: object) -> oci_spec.SpecInputs:
    (tmp_path / "etc").mkdir(exist_ok=True)
    (tmp_path / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/home/n:/bin/false\n")
    (tmp_path / "etc" / "group").write_text("root:x:0:\nwheel:x:10:nobody\nnogroup:x:65534:\n")
    return oci_spec.SpecInputs(cid="c" * 64, config=config, host_config=host_config, rootfs=tmp_path,
                               hostname_path=tmp_path / "h", hosts_path=tmp_path / "hs",
                               resolv_path=tmp_path / "r", cgroups_path="dockyard/x", **kw)  # type: ignore[arg-type]


def test_defaults_like_docker(tmp_path: Path) -> None:
    spec = oci_spec.build_spec(inputs(tmp_path, {"Cmd": ["sh"], "Env": ["A=1"]}, {}))
    proc = spec["process"]
    assert proc["args"] == ["sh"] and proc["cwd"] == "/" and proc["user"] == {"uid": 0, "gid": 0, "additionalGids": [0]}
    assert "A=1" in proc["env"] and any(e.startswith("PATH=") for e in proc["env"]) and "HOME=/root" in proc["env"]
    assert set(proc["capabilities"]["bounding"]) == set(oci_spec.DEFAULT_CAPS)
    assert "CAP_SYS_ADMIN" not in proc["capabilities"]["effective"]
    types = {n["type"] for n in spec["linux"]["namespaces"]}
    assert {"pid", "mount", "ipc", "uts", "network"} <= types
    assert "/proc/kcore" in spec["linux"]["maskedPaths"] and "/proc/sys" in spec["linux"]["readonlyPaths"]
    dests = [m["destination"] for m in spec["mounts"]]
    assert {"/proc", "/dev", "/dev/pts", "/dev/shm", "/etc/hosts", "/etc/resolv.conf", "/etc/hostname"} <= set(dests)
    assert spec["hostname"] == "c" * 12
    assert spec["linux"]["seccomp"]["defaultAction"] == "SCMP_ACT_ALLOW"
    denied = {n for r in spec["linux"]["seccomp"]["syscalls"] for n in r["names"]}
    assert {"mount", "unshare", "keyctl", "kexec_load"} <= denied


def test_options_map_to_spec(tmp_path: Path) -> None:
    hc = {"Memory": 64 << 20, "NanoCpus": 500_000_000, "PidsLimit": 20, "CapAdd": ["SYS_ADMIN"],
          "CapDrop": ["NET_RAW"], "ReadonlyRootfs": True, "Tmpfs": {"/run": "size=1m"},
          "SecurityOpt": ["no-new-privileges"], "Ulimits": [{"Name": "nofile", "Soft": 10, "Hard": 20}],
          "Sysctls": {"net.ipv4.ip_forward": "1"}, "NetworkMode": "host", "GroupAdd": ["wheel"]}
    spec = oci_spec.build_spec(inputs(tmp_path, {"Cmd": ["true"], "User": "nobody", "WorkingDir": "/tmp"},
                                      hc, netns="host"))
    res = spec["linux"]["resources"]
    assert res["memory"] == {"limit": 64 << 20, "swap": 128 << 20}
    assert res["cpu"] == {"period": 100000, "quota": 50000} and res["pids"] == {"limit": 20}
    caps = spec["process"]["capabilities"]["bounding"]
    assert "CAP_SYS_ADMIN" in caps and "CAP_NET_RAW" not in caps
    assert spec["root"]["readonly"] and spec["process"]["noNewPrivileges"]
    assert spec["process"]["user"] == {"uid": 65534, "gid": 65534, "additionalGids": [10, 65534]}
    assert spec["process"]["cwd"] == "/tmp"
    assert {"type": "RLIMIT_NOFILE", "hard": 20, "soft": 10} in spec["process"]["rlimits"]
    assert "network" not in {n["type"] for n in spec["linux"]["namespaces"]}
    assert any(m["destination"] == "/run" and "size=1m" in m["options"] for m in spec["mounts"])
    # SYS_ADMIN given: the default profile lets mount through, as Docker's does
    denied = {n for r in spec["linux"]["seccomp"]["syscalls"] for n in r["names"]}
    assert "mount" not in denied and "keyctl" in denied


def test_privileged_and_unconfined(tmp_path: Path) -> None:
    spec = oci_spec.build_spec(inputs(tmp_path, {"Cmd": ["true"]}, {"Privileged": True}))
    assert "seccomp" not in spec["linux"] and "maskedPaths" not in spec["linux"]
    assert "CAP_SYS_ADMIN" in spec["process"]["capabilities"]["bounding"]
    spec = oci_spec.build_spec(inputs(tmp_path, {"Cmd": ["true"]}, {"SecurityOpt": ["seccomp=unconfined"]}))
    assert "seccomp" not in spec["linux"]


@pytest.mark.parametrize(("hc", "config", "msg"), [
    ({"CapAdd": ["NOPE"]}, {"Cmd": ["x"]}, "unknown capability"),
    ({"Ulimits": [{"Name": "bogus", "Soft": 1, "Hard": 1}]}, {"Cmd": ["x"]}, "invalid ulimit"),
    ({"SecurityOpt": ["weird=1"]}, {"Cmd": ["x"]}, "security-opt"),
    ({}, {"Cmd": ["x"], "User": "ghost"}, "unable to find user ghost"),
    ({}, {}, "no command"),
])
def test_bad_input_is_named(tmp_path: Path, hc: dict, config: dict, msg: str) -> None:
    with pytest.raises(InvalidArgument, match=msg):
        oci_spec.build_spec(inputs(tmp_path, config, hc))


def test_docker_format_profile_conversion() -> None:
    prof = {"defaultAction": "SCMP_ACT_ERRNO", "archMap": [{"architecture": "SCMP_ARCH_X86_64",
                                                            "subArchitectures": ["SCMP_ARCH_X86"]}],
            "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                         {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}}]}
    out = seccomp.to_oci(prof, ["CAP_CHOWN"])
    assert [r["names"] for r in out["syscalls"]] == [["read"]]
    out = seccomp.to_oci(prof, ["CAP_SYS_ADMIN"])
    assert len(out["syscalls"]) == 2
    with pytest.raises(InvalidArgument):
        seccomp.to_oci({"syscalls": []}, [])


def test_merge_config_with_image() -> None:
    img = {"Cmd": ["sh"], "Entrypoint": None, "Env": ["PATH=/bin", "A=img"], "WorkingDir": "/w",
           "Labels": {"a": "1"}}
    cfg = merge_config({"Image": "x", "Env": ["A=mine"], "Labels": {"b": "2"}}, img)
    assert cfg["Cmd"] == ["sh"] and cfg["Env"] == ["PATH=/bin", "A=mine"] and cfg["WorkingDir"] == "/w"
    assert cfg["Labels"] == {"a": "1", "b": "2"}
    cfg = merge_config({"Image": "x", "Cmd": ["echo", "hi"]}, {**img, "Entrypoint": ["/init"]})
    assert oci_spec.command_of(cfg) == ["/init", "echo", "hi"]
    cfg = merge_config({"Image": "x", "Entrypoint": ["env"]}, img)
    assert oci_spec.command_of(cfg) == ["env"]


def test_parse_signal() -> None:
    assert parse_signal("SIGTERM") == 15 and parse_signal("kill") == 9 and parse_signal("10") == 10
    with pytest.raises(InvalidArgument):
        parse_signal("SIGNOPE")
