"""Mount spec parsing and OCI conversion, table-driven (no root, no disk except tmp_path)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dockyard.errors import InvalidArgument, NotImplementedYet
from dockyard.volumes import oci, spec
from dockyard.volumes.model import MountPlan

# raw -> (type, source, destination, read_only, propagation, copy_data) or the error text
BINDS: list[tuple[str, Any]] = [
    ("/a:/b", ("bind", "/a", "/b", False, "rprivate", True)),
    ("/a/../c/:/b/./d/", ("bind", "/c", "/b/d", False, "rprivate", True)),
    ("//a:///b//c", ("bind", "/a", "/b/c", False, "rprivate", True)),
    ("/a:/b:ro", ("bind", "/a", "/b", True, "rprivate", True)),
    ("/a:/b:ro,rshared", ("bind", "/a", "/b", True, "rshared", True)),
    ("/a:/b:z", ("bind", "/a", "/b", False, "rprivate", True)),
    ("/a:/b:Z,rw,slave,cached", ("bind", "/a", "/b", False, "slave", True)),
    ("vol:/x", ("volume", "vol", "/x", False, "", True)),
    ("vol:/x:ro,nocopy", ("volume", "vol", "/x", True, "", False)),
    ("/a:/b:foo", "invalid mode: foo"),
    ("/a:/b:ro,rw", "invalid mode: ro,rw"),
    ("/a:/b:shared,slave", "invalid mode: shared,slave"),
    ("/x:rw", "invalid volume specification: '/x:rw'"),
    ("a:", "invalid volume specification: 'a:'"),
    (":/x", "invalid volume specification: ':/x'"),
    ("a:b:c:d", "invalid volume specification: 'a:b:c:d'"),
    ("/a://", "invalid volume specification: '/a://': invalid mount config for type \"bind\": "
              "invalid specification: destination can't be '/'"),
    ("/a:/", "invalid volume specification: '/a:/': invalid mount config for type \"bind\": "
             "invalid specification: destination can't be '/'"),
    ("vol:rel", "invalid volume specification: 'vol:rel': invalid mount config for type \"volume\": "
                "invalid mount path: 'rel' mount path must be absolute"),
    ("vol:/x:shared", "invalid volume specification: 'vol:/x:shared': invalid mount config for type "
                      "\"volume\": field BindOptions must not be specified"),
]


def _summary(p: MountPlan) -> tuple[Any, ...]:
    return (p.type, p.source, p.destination, p.read_only, p.propagation, p.copy_data)


@pytest.mark.parametrize(("raw", "want"), BINDS)
def test_parse_bind(raw: str, want: Any) -> None:
    if isinstance(want, str):
        with pytest.raises(InvalidArgument) as e:
            spec.parse_bind(raw)
        assert str(e.value) == want
    else:
        p = spec.parse_bind(raw)
        assert _summary(p) == want
        assert p.create_source == (p.type == "bind") and p.origin == "binds"


MOUNTS: list[tuple[dict[str, Any], Any]] = [
    ({"Type": "bind", "Source": "/", "Target": "/x", "ReadOnly": True, "BindOptions": {"Propagation": "rslave"}},
     ("bind", "/", "/x", True, "rslave", True)),
    ({"Type": "volume", "Target": "/v", "VolumeOptions": {"NoCopy": True, "Labels": {"a": "b"},
                                                          "DriverConfig": {"Options": {"type": "tmpfs"}}}},
     ("volume", "", "/v", False, "", False)),
    ({"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1048576, "Mode": 1016}},
     ("tmpfs", "", "/t", False, "", True)),
    ({"Type": "bind", "Target": "/x"}, 'invalid mount config for type "bind": field Source must not be empty'),
    ({"Type": "foo", "Target": "/x"}, 'invalid mount config for type "foo": mount type unknown'),
    ({"Type": "volume", "Source": "v"}, 'invalid mount config for type "volume": field Target must not be empty'),
    ({"Type": "bind", "Source": "/nonexistent-dockyard", "Target": "/x"},
     'invalid mount config for type "bind": bind source path does not exist: /nonexistent-dockyard'),
    ({"Type": "bind", "Source": "rel", "Target": "/x"},
     "invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be absolute"),
    ({"Type": "bind", "Source": "/", "Target": "/x", "BindOptions": {"Propagation": "weird"}},
     'invalid mount config for type "bind": invalid propagation mode: weird'),
    ({"Type": "bind", "Source": "/", "Target": "/x", "VolumeOptions": {}},
     'invalid mount config for type "bind": field VolumeOptions must not be specified'),
    ({"Type": "volume", "Target": "/v", "ReadOnly": True},
     'invalid mount config for type "volume": must not set ReadOnly mode when using anonymous volumes'),
    ({"Type": "volume", "Target": "/v", "VolumeOptions": {"Subpath": "x"}},
     'invalid mount config for type "volume": must not set Subpath when using anonymous volumes'),
    ({"Type": "volume", "Source": "v", "Target": "/v", "VolumeOptions": {"Subpath": "../x"}},
     'invalid mount config for type "volume": subpath must be a relative path within the volume'),
    ({"Type": "tmpfs", "Source": "x", "Target": "/t"}, 'invalid mount config for type "tmpfs": field Source must not be specified'),
    ({"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"Options": [["nosuid"]]}},
     'invalid mount config for type "tmpfs": invalid option: nosuid'),
]


@pytest.mark.parametrize(("m", "want"), MOUNTS)
def test_parse_mount(m: dict[str, Any], want: Any) -> None:
    if isinstance(want, str):
        with pytest.raises(InvalidArgument) as e:
            spec.parse_mount(m)
        assert str(e.value) == want
    else:
        assert _summary(spec.parse_mount(m)) == want


def test_mount_details_and_image_type() -> None:
    p = spec.parse_mount({"Type": "volume", "Source": "v", "Target": "/v",
                          "VolumeOptions": {"Labels": {"a": "b"}, "Subpath": "sub/dir",
                                            "DriverConfig": {"Options": {"type": "tmpfs", "device": "tmpfs"}}}})
    assert (p.driver, p.labels, p.driver_opts, p.subpath) == ("local", {"a": "b"},
                                                               {"type": "tmpfs", "device": "tmpfs"}, "sub/dir")
    t = spec.parse_mount({"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 3 << 20, "Mode": 0o1770,
                                                                          "Options": [["exec"]]}})
    assert t.tmpfs_data == "mode=1770,size=3m,exec"
    b = spec.parse_mount({"Type": "bind", "Source": "/", "Target": "/x", "BindOptions": {"NonRecursive": True}})
    assert b.non_recursive and not b.create_source
    with pytest.raises(NotImplementedYet):
        spec.parse_mount({"Type": "image", "Source": "busybox", "Target": "/i"})


def test_volumes_from_and_tmpfs_specs() -> None:
    assert spec.parse_volumes_from("abc") == ("abc", "rw")
    assert spec.parse_volumes_from("abc:ro") == ("abc", "ro")
    for bad, msg in (("abc:shared", "invalid mode: shared"), ("abc:nocopy", "invalid mode: nocopy"),
                     ("abc:xx", "invalid mode: xx"), ("", "volumes-from specification cannot be an empty string")):
        with pytest.raises(InvalidArgument) as e:
            spec.parse_volumes_from(bad)
        assert str(e.value) == msg
    assert spec.parse_tmpfs("/run", "size=1m,mode=1777,ro").read_only
    with pytest.raises(InvalidArgument, match="invalid tmpfs option"):
        spec.parse_tmpfs("/run", "bogus=1")
    with pytest.raises(InvalidArgument, match="destination can't be '/'"):
        spec.parse_tmpfs("/", "")
    with pytest.raises(InvalidArgument, match="must be absolute"):
        spec.parse_tmpfs("run", "")


def test_plan_precedence_and_duplicates(tmp_path: Path) -> None:
    other = [MountPlan("volume", "/shared", "vshared", driver="local"),
             MountPlan("bind", "/logs", "/var/log", propagation="rprivate"),
             MountPlan("volume", "/over", "vover", driver="local")]
    looked: list[str] = []

    def volumes_from(ref: str) -> list[Any]:
        looked.append(ref)
        return [other[0], other[1].to_json(), other[2]]  # plans or their JSON, as records keep them

    plans = spec.plan_mounts({"VolumesFrom": ["donor:ro"], "Binds": ["/tmp:/over", "named:/a/b"],
                              "Mounts": [{"Type": "tmpfs", "Target": "/t"}], "Tmpfs": {"/run": "size=1m"}},
                             ["/data", "/a/b", "/run", "/shared"], volumes_from=volumes_from)
    assert looked == ["donor"]
    by = {p.destination: p for p in plans}
    assert set(by) == {"/shared", "/logs", "/over", "/a/b", "/t", "/run", "/data"}
    assert by["/shared"].read_only and by["/shared"].origin == "volumes-from" and not by["/shared"].copy_data
    assert by["/over"].type == "bind"  # -v wins over --volumes-from
    assert by["/a/b"].source == "named"  # a VOLUME under an explicit mount is not made
    assert by["/run"].type == "tmpfs"
    assert by["/data"].anonymous and by["/data"].origin == "image"
    depths = [p.destination.count("/") for p in plans]
    assert depths == sorted(depths)  # parents first
    for hc in ({"Binds": ["/a:/x", "/b:/x/"]}, {"Binds": ["/a:/x"], "Mounts": [{"Type": "tmpfs", "Target": "/x"}]},
               {"Binds": ["/a:/x"], "Tmpfs": {"/x": ""}}):
        with pytest.raises(InvalidArgument) as e:
            spec.plan_mounts(hc)
        assert str(e.value) == "Duplicate mount point: /x"
    with pytest.raises(InvalidArgument, match="invalid volume specification: '/'"):
        spec.plan_mounts({}, ["/"])


def test_oci_entries() -> None:
    bind = MountPlan("bind", "/x", "/src", True, propagation="rshared", host_path="/src")
    vol = MountPlan("volume", "/v", "data", host_path="/vols/data/_data")
    nr = MountPlan("bind", "/n", "/src", non_recursive=True, propagation="rprivate", host_path="/src")
    tmp = spec.parse_tmpfs("/run", "exec,size=1m,mode=1777")
    ro_tmp = MountPlan("tmpfs", "/ro", "", True)
    assert oci.oci_mounts([tmp, bind, vol, nr, ro_tmp]) == [
        {"destination": "/run", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "nodev", "rprivate", "exec", "size=1m", "mode=1777"]},
        {"destination": "/x", "type": "bind", "source": "/src", "options": ["rbind", "ro", "rshared"]},
        {"destination": "/v", "type": "bind", "source": "/vols/data/_data", "options": ["rbind", "rprivate"]},
        {"destination": "/n", "type": "bind", "source": "/src", "options": ["bind", "rprivate"]},
        {"destination": "/ro", "type": "tmpfs", "source": "tmpfs",
         "options": ["noexec", "nosuid", "nodev", "rprivate", "ro"]},
    ]
    with pytest.raises(InvalidArgument, match="no host path"):
        oci.oci_mount(MountPlan("volume", "/v", "data"))
    assert oci.merge_tmpfs_options(["noexec", "size=1m", "exec", "size=2m", "rshared"]) == ["exec", "size=2m", "rshared"]


def test_plan_json_roundtrip() -> None:
    p = spec.parse_mount({"Type": "volume", "Source": "v", "Target": "/v", "VolumeOptions": {"Labels": {"a": "b"}}})
    assert MountPlan.from_json(p.to_json()) == p


def test_random_binds_fail_only_cleanly() -> None:
    import random

    rnd = random.Random(4321)
    atoms = ["/", "a", "/a", "..", ".", ":", "ro", "rw", "z", "Z", "nocopy", "shared", "rslave", ",",
             "", "//", "vol", "x y", "cached", "\\"]
    for _ in range(3000):
        raw = "".join(rnd.choice(atoms) for _ in range(rnd.randint(1, 6)))
        try:
            p = spec.parse_bind(raw)
        except InvalidArgument as e:
            assert str(e)
            continue
        assert p.destination.startswith("/") and p.destination != "/" and "//" not in p.destination
        assert posix_clean(p.destination) == p.destination
        if p.type == "bind":
            assert p.source.startswith("/") and p.propagation in spec.PROPAGATIONS
        else:
            assert p.type == "volume" and not p.source.startswith("/")


def posix_clean(p: str) -> str:
    import posixpath

    out = posixpath.normpath(p)
    return "/" + out.lstrip("/")
