"""The Docker SDK for Python (docker 7.1.0) against a private dockyardd: one sweep of the calls
applications make, each asserting what the SDK hands back (shapes, values, errors)."""

from __future__ import annotations

import io
import tarfile
import time
from collections.abc import Iterator
from typing import Any

import pytest

docker = pytest.importorskip("docker")
pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def client(engine: Any) -> Iterator[Any]:
    c = docker.DockerClient(base_url=engine.host, timeout=60)
    try:
        yield c
    finally:
        for cont in c.containers.list(all=True, filters={"label": "sdk-sweep"}):
            cont.remove(force=True)
        c.close()


LABEL = {"sdk-sweep": "1"}
TICKER = ["sh", "-c", "i=0; while true; do echo line$i; i=$((i+1)); sleep 0.1; done"]


def wait_for_logs(cont: Any, n: int) -> None:
    for _ in range(100):
        if cont.logs().count(b"\n") >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"fewer than {n} log lines: {cont.logs()!r}")


def test_system(client: Any) -> None:
    assert client.ping() is True
    v = client.version()
    assert v["ApiVersion"] == "1.50" and v["Os"] == "linux" and v["MinAPIVersion"] == "1.24"
    info = client.info()
    assert info["OSType"] == "linux" and isinstance(info["Containers"], int)
    df = client.df()
    assert {"LayersSize", "Images", "Containers", "Volumes"} <= set(df)
    assert any("busybox:latest" in (i.get("RepoTags") or []) for i in df["Images"])


def test_run_forms(client: Any) -> None:
    assert client.containers.run("busybox", "echo hi", remove=True, labels=LABEL) == b"hi\n"
    out = list(client.containers.run("busybox", ["sh", "-c", "echo a; echo b"], stream=True,
                                     remove=True, labels=LABEL))
    assert b"".join(out) == b"a\nb\n"
    assert client.containers.run("busybox", ["sh", "-c", "echo e >&2; echo o"], stdout=False,
                                 stderr=True, remove=True, labels=LABEL) == b"e\n"
    with pytest.raises(docker.errors.ContainerError) as ei:
        client.containers.run("busybox", ["sh", "-c", "echo bad >&2; exit 3"], remove=True, labels=LABEL)
    assert ei.value.exit_status == 3 and b"bad" in ei.value.stderr
    with pytest.raises(docker.errors.APIError):  # not here, and no registry to pull it from
        client.containers.run("nosuchimage:0", "true", labels=LABEL)
    # remove=True left nothing behind
    assert client.containers.list(all=True, filters={"label": "sdk-sweep"}) == []


def test_logs_variants(client: Any) -> None:
    c = client.containers.run("busybox", TICKER, detach=True, name="sdklogs", labels=LABEL)
    try:
        wait_for_logs(c, 5)
        lines = c.logs().splitlines()
        assert lines[:3] == [b"line0", b"line1", b"line2"]
        assert len(c.logs(tail=2).splitlines()) == 2
        stamped = c.logs(timestamps=True, tail=1).decode()
        assert stamped[:4].isdigit() and "Z line" in stamped
        assert c.logs(since=time.time() + 3600) == b""
        assert c.logs(until=1) == b""
        it = c.logs(stream=True, follow=True, tail=0)
        first, second = next(it), next(it)  # new lines arrive while following
        it.close()
        n1, n2 = int(first.strip()[4:]), int(second.strip()[4:])
        assert n2 == n1 + 1 and n1 >= len(lines) - 1
        stream = c.logs(stream=True, follow=False)
        assert next(iter(stream)).startswith(b"line0")
    finally:
        c.remove(force=True)


def test_exec_run_forms(client: Any) -> None:
    c = client.containers.run("busybox", ["sleep", "300"], detach=True, name="sdkexec", labels=LABEL)
    try:
        assert tuple(c.exec_run("echo ex")) == (0, b"ex\n")
        assert tuple(c.exec_run(["sh", "-c", "exit 2"])) == (2, b"")
        res = c.exec_run(["sh", "-c", "echo 1; echo 2"], stream=True)
        assert b"".join(res.output) == b"1\n2\n"
        assert tuple(c.exec_run(["sh", "-c", "echo o; echo e >&2"], demux=True)) == (0, (b"o\n", b"e\n"))
        code, out = c.exec_run("tty", tty=True)
        assert code == 0 and out.startswith(b"/dev/pts/") and out.endswith(b"\r\n")
        code, out = c.exec_run(["sh", "-c", "echo $FOO $(pwd) $(id -u)"], environment={"FOO": "bar"},
                               workdir="/tmp", user="nobody")
        assert (code, out) == (0, b"bar /tmp 65534\n")
        with pytest.raises(docker.errors.APIError):
            c.exec_run([])
    finally:
        c.remove(force=True)


def test_archive_stats_top_diff_commit_export(client: Any) -> None:
    c = client.containers.run("busybox", ["sleep", "300"], detach=True, name="sdkfs", labels=LABEL)
    try:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            ti = tarfile.TarInfo("f.txt")
            ti.size = 7
            t.addfile(ti, io.BytesIO(b"payload"))
        assert c.put_archive("/tmp", buf.getvalue()) is True
        bits, st = c.get_archive("/tmp/f.txt")
        assert st["name"] == "f.txt" and st["size"] == 7
        tf = tarfile.open(fileobj=io.BytesIO(b"".join(bits)))
        assert tf.extractfile("f.txt").read() == b"payload"
        with pytest.raises(docker.errors.NotFound):
            c.get_archive("/no/such")
        s = c.stats(stream=False)
        assert s["memory_stats"]["usage"] > 0 and s["pids_stats"]["current"] >= 1
        it = c.stats(stream=True, decode=True)
        a, b = next(it), next(it)
        assert b["precpu_stats"]["cpu_usage"]["total_usage"] == a["cpu_stats"]["cpu_usage"]["total_usage"]
        top = c.top()
        assert "PID" in top["Titles"] and any("sleep" in " ".join(p) for p in top["Processes"])
        assert {"Path": "/tmp/f.txt", "Kind": 1} in c.diff()
        img = c.commit("sdkcommit", "v1", message="m", author="me", changes=["ENV X=1"])
        try:
            assert "X=1" in img.attrs["Config"]["Env"] and img.attrs["Author"] == "me"
            assert client.containers.run(img.id, "cat /tmp/f.txt", remove=True, labels=LABEL) == b"payload"
        finally:
            client.images.remove("sdkcommit:v1")
        names = tarfile.open(fileobj=io.BytesIO(b"".join(c.export()))).getnames()
        assert any(n.lstrip("./") == "tmp/f.txt" for n in names)
    finally:
        c.remove(force=True)


def test_lifecycle_verbs(client: Any) -> None:
    c = client.containers.run("busybox", ["sleep", "300"], detach=True, name="sdklife", labels=LABEL)
    try:
        c.pause()
        c.reload()
        assert c.status == "paused"
        c.unpause()
        c.reload()
        assert c.status == "running"
        c.rename("sdklife2")
        c.reload()
        assert c.name == "sdklife2"
        assert c.update(mem_limit="64m", memswap_limit="128m", cpu_shares=512) == {"Warnings": []}
        c.reload()
        assert c.attrs["HostConfig"]["Memory"] == 64 << 20 and c.attrs["HostConfig"]["CpuShares"] == 512
        pid = c.attrs["State"]["Pid"]
        c.restart(timeout=1)
        c.reload()
        assert c.status == "running" and c.attrs["State"]["Pid"] != pid
        c.kill(signal="SIGKILL")
        assert c.wait(timeout=10) == {"StatusCode": 137, "Error": None}
        c.start()
        c.stop(timeout=1)
        c.reload()
        assert c.status == "exited"
    finally:
        c.remove(force=True)
    n = client.containers.create("busybox", "true", name="sdkwait", labels=LABEL)
    try:
        assert n.wait(condition="not-running", timeout=10)["StatusCode"] == 0  # created: not running
    finally:
        n.remove()


def test_list_filters_and_prune(client: Any) -> None:
    a = client.containers.run("busybox", ["sh", "-c", "exit 7"], detach=True, name="sdkf1", labels={**LABEL, "grp": "a"})
    b = client.containers.run("busybox", ["sleep", "300"], detach=True, name="sdkf2", labels={**LABEL, "grp": "b"})
    try:
        assert a.wait(timeout=10)["StatusCode"] == 7

        def names(**kw: Any) -> set[str]:
            return {x.name for x in client.containers.list(**kw) if x.name.startswith("sdkf")}
        assert names() == {"sdkf2"}
        assert names(all=True) == {"sdkf1", "sdkf2"}
        assert names(all=True, filters={"status": "exited"}) == {"sdkf1"}
        assert names(filters={"status": "running"}) == {"sdkf2"}
        assert names(all=True, filters={"label": "grp=a"}) == {"sdkf1"}
        assert names(all=True, filters={"label": "grp"}) == {"sdkf1", "sdkf2"}
        assert names(all=True, filters={"name": "sdkf2"}) == {"sdkf2"}
        assert names(all=True, filters={"ancestor": "busybox"}) == {"sdkf1", "sdkf2"}
        assert names(all=True, filters={"ancestor": "nosuch"}) == set()
        assert names(all=True, filters={"exited": 7}) == {"sdkf1"}
        assert names(all=True, filters={"exited": 0}) == set()
        assert names(all=True, filters={"id": b.id[:12]}) == {"sdkf2"}
        assert names(all=True, filters={"before": "sdkf2"}) == {"sdkf1"}
        assert names(all=True, filters={"since": "sdkf1"}) == {"sdkf2"}
        assert [x.name for x in client.containers.list(all=True, limit=1)] == ["sdkf2"]
        with pytest.raises(docker.errors.APIError):
            client.containers.list(filters={"status": "sleepy"})
        pruned = client.containers.prune(filters={"label": "grp=a"})
        assert pruned["ContainersDeleted"] == [a.id]
        with pytest.raises(docker.errors.NotFound):
            client.containers.get(a.id)
        assert client.containers.get(b.id).status == "running"  # prune never touches running ones
    finally:
        for cont in (a, b):
            try:
                cont.remove(force=True)
            except docker.errors.NotFound:
                pass


def test_events_filters_since_until(client: Any) -> None:
    t0 = time.time()
    c = client.containers.run("busybox", ["sh", "-c", "exit 1"], detach=True, name="sdkev", labels=LABEL)
    c.wait(timeout=10)
    c.remove()
    t1 = time.time() + 1
    evs = list(client.events(since=t0 - 1, until=t1, decode=True,
                             filters={"type": "container", "container": "sdkev"}))
    actions = [e["Action"] for e in evs]
    assert actions[:1] == ["create"] and "start" in actions and "die" in actions and actions[-1] == "destroy"
    die = next(e for e in evs if e["Action"] == "die")
    assert die["Actor"]["Attributes"]["exitCode"] == "1" and die["Actor"]["Attributes"]["name"] == "sdkev"
    only_die = list(client.events(since=t0 - 1, until=t1, decode=True,
                                  filters={"event": "die", "container": "sdkev"}))
    assert [e["Action"] for e in only_die] == ["die"]
    assert list(client.events(since=t0 - 100, until=t0 - 50, decode=True,
                              filters={"container": "sdkev"})) == []


def test_images(client: Any) -> None:
    img = client.images.get("busybox")
    assert img.id.startswith("sha256:") and "busybox:latest" in img.tags
    assert img.tag("sdkbb", "t") is True
    try:
        assert "sdkbb:t" in client.images.get(img.id).tags
        assert [i.id for i in client.images.list("sdkbb")] == [img.id]
        assert any("busybox:latest" in i.tags for i in client.images.list(filters={"reference": "busybox"}))
        assert img.history()[0]["Id"] == img.id
        data = b"".join(client.images.get("sdkbb:t").save(named="sdkbb:t"))
        client.images.remove("sdkbb:t")
        with pytest.raises(docker.errors.ImageNotFound):
            client.images.get("sdkbb:t")
        loaded = client.images.load(data)
        assert any("sdkbb:t" in i.tags for i in loaded)
    finally:
        try:
            client.images.remove("sdkbb:t")
        except docker.errors.ImageNotFound:
            pass
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.remove("sdkbb:t")


def test_attach_stream_then_remove_at_once(client: Any) -> None:
    c = client.containers.run("busybox", ["sh", "-c", "for i in 1 2 3; do echo a$i; sleep 0.1; done"],
                              detach=True, labels=LABEL)
    out = b"".join(c.attach(stream=True, logs=True))
    assert out == b"a1\na2\na3\n"
    c.remove()  # the attach ended with the process: the container is already recorded as exited


def test_attach_socket_stdin(client: Any) -> None:
    c = client.containers.create("busybox", "cat", stdin_open=True, labels=LABEL)
    try:
        sock = c.attach_socket(params={"stdin": 1, "stdout": 1, "stream": 1})
        c.start()
        raw = sock._sock
        raw.sendall(b"hello\n")
        raw.shutdown(1)  # SHUT_WR: cat sees EOF and exits
        got = b""
        while len(got) < 14:
            chunk = raw.recv(100)
            if not chunk:
                break
            got += chunk
        assert got == b"\x01\x00\x00\x00\x00\x00\x00\x06hello\n"
        assert c.wait(timeout=10)["StatusCode"] == 0
        sock.close()
    finally:
        c.remove(force=True)


def test_attach_logs_and_stream_meet_without_gap_or_repeat(client: Any) -> None:
    # a fast writer: logs=1&stream=1 must hand over from the file to live output exactly
    c = client.containers.run("busybox", ["sh", "-c", "i=0; while [ $i -lt 3000 ]; do echo $i; i=$((i+1)); done; sleep 0.3"],
                              detach=True, labels=LABEL)
    try:
        out = b"".join(c.attach(stream=True, logs=True))
        assert out.split() == [str(i).encode() for i in range(3000)]
    finally:
        c.remove(force=True)
