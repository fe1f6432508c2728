"""Blob endpoints against a real registry process: uploads of every kind, ranges, errors."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from regtest_support import Reg, sha256, sha512

ZERO = "sha256:" + "0" * 64


def _files(root: os.PathLike[str]) -> list[str]:
    out = []
    for dirpath, _, files in os.walk(root):
        out += [os.path.relpath(os.path.join(dirpath, f), root) for f in files]
    return out


def test_base_endpoint_and_api_header(reg: Reg) -> None:
    r = reg.req("GET", "/v2/")
    assert r.status == 200
    assert r.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_post_then_put_get_head_and_ranges(reg: Reg) -> None:
    data = os.urandom(100_000)
    d = reg.push_blob("team/app", data)
    r = reg.req("GET", f"/v2/team/app/blobs/{d}")
    assert r.status == 200 and r.body == data
    assert r.headers["Docker-Content-Digest"] == d
    r = reg.req("HEAD", f"/v2/team/app/blobs/{d}")
    assert r.status == 200 and r.body == b""
    assert r.headers["Content-Length"] == str(len(data))
    assert r.headers["Docker-Content-Digest"] == d
    r = reg.req("GET", f"/v2/team/app/blobs/{d}", headers={"Range": "bytes=10-19"})
    assert r.status == 206 and r.body == data[10:20]
    assert r.headers["Content-Range"] == f"bytes 10-19/{len(data)}"
    r = reg.req("GET", f"/v2/team/app/blobs/{d}", headers={"Range": "bytes=-5"})
    assert r.status == 206 and r.body == data[-5:]
    r = reg.req("GET", f"/v2/team/app/blobs/{d}", headers={"Range": f"bytes={len(data) + 5}-"})
    assert r.status == 416


def test_blob_not_in_repository_is_unknown(reg: Reg) -> None:
    d = reg.push_blob("one", b"only in one")
    r = reg.req("GET", f"/v2/two/blobs/{d}")
    assert r.status == 404 and r.code == "BLOB_UNKNOWN"
    r = reg.req("HEAD", f"/v2/one/blobs/{ZERO}")
    assert r.status == 404 and r.body == b""
    r = reg.req("GET", "/v2/one/blobs/sha256:nothex")
    assert r.status == 400 and r.code == "DIGEST_INVALID"


def test_single_post_upload(reg: Reg) -> None:
    data = b"single post body"
    r = reg.req("POST", f"/v2/sp/blobs/uploads/?digest={sha256(data)}", data,
                {"Content-Type": "application/octet-stream"})
    assert r.status == 201
    assert r.headers["Location"] == f"/v2/sp/blobs/{sha256(data)}"
    assert reg.req("GET", r.headers["Location"]).body == data


def test_digest_mismatch_leaves_nothing(reg: Reg) -> None:
    r = reg.req("POST", "/v2/bad/blobs/uploads/")
    loc = r.headers["Location"]
    r = reg.req("PUT", f"{loc}?digest={ZERO}", b"garbage\n")
    assert r.status == 400 and r.code == "DIGEST_INVALID"
    assert reg.req("GET", f"/v2/bad/blobs/{ZERO}").status == 404
    garbage = sha256(b"garbage\n")
    assert reg.req("GET", f"/v2/bad/blobs/{garbage}").status == 404
    assert [f for f in _files(reg.root) if f.startswith("blobs/")] == []
    assert [f for f in _files(reg.root) if "/_uploads/" in f] == []
    # and the session is gone
    assert reg.req("GET", loc).status == 404


def test_put_without_digest_and_bad_digest(reg: Reg) -> None:
    loc = reg.req("POST", "/v2/x/blobs/uploads/").headers["Location"]
    r = reg.req("PUT", loc, b"abc")
    assert r.status == 400 and r.code == "DIGEST_INVALID"
    r = reg.req("PUT", f"{loc}?digest=md5:abc", b"abc")
    assert r.status == 400 and r.code == "DIGEST_INVALID"


def test_chunked_upload_status_and_416(reg: Reg) -> None:
    data = os.urandom(3000)
    r = reg.req("POST", "/v2/chunky/blobs/uploads/", b"", {"Content-Length": "0"})
    assert r.status == 202 and r.headers["Range"] == "0-0"
    loc = r.headers["Location"]
    r = reg.req("PATCH", loc, data[:1000], {"Content-Range": "0-999",
                                            "Content-Type": "application/octet-stream"})
    assert r.status == 202 and r.headers["Range"] == "0-999"
    loc = r.headers["Location"]
    # out of order: 416, nothing appended
    r = reg.req("PATCH", loc, data[1500:2000], {"Content-Range": "1500-1999"})
    assert r.status == 416
    assert r.headers["Range"] == "0-999"
    # malformed range
    r = reg.req("PATCH", loc, data[1000:1100], {"Content-Range": "1000-abc"})
    assert r.status == 416
    # range/length disagreement
    r = reg.req("PATCH", loc, data[1000:1100], {"Content-Range": "1000-1200"})
    assert r.status == 416
    r = reg.req("GET", loc)
    assert r.status == 204 and r.headers["Range"] == "0-999"
    assert r.headers["Location"].endswith(loc.rsplit("/", 1)[1])
    # a PATCH without Content-Range (docker's streaming style) appends
    r = reg.req("PATCH", loc, data[1000:2000])
    assert r.status == 202 and r.headers["Range"] == "0-1999"
    # last chunk in the closing PUT, out of order first
    r = reg.req("PUT", f"{loc}?digest={sha256(data)}", data[2500:], {"Content-Range": "2500-2999"})
    assert r.status == 416
    r = reg.req("PUT", f"{loc}?digest={sha256(data)}", data[2000:], {"Content-Range": "2000-2999"})
    assert r.status == 201
    assert reg.req("GET", f"/v2/chunky/blobs/{sha256(data)}").body == data


def test_cancel_upload(reg: Reg) -> None:
    loc = reg.req("POST", "/v2/c/blobs/uploads/").headers["Location"]
    reg.req("PATCH", loc, b"partial", {"Content-Range": "0-6"})
    r = reg.req("DELETE", loc)
    assert r.status == 204
    assert reg.req("GET", loc).status == 404
    r = reg.req("DELETE", loc)
    assert r.status == 404 and r.code == "BLOB_UPLOAD_UNKNOWN"
    r = reg.req("PATCH", "/v2/c/blobs/uploads/not-a-uuid", b"x")
    assert r.status == 404 and r.code == "BLOB_UPLOAD_UNKNOWN"
    assert [f for f in _files(reg.root) if "/_uploads/" in f] == []


def test_sha512_blobs(reg: Reg) -> None:
    data = os.urandom(5000)
    d = sha512(data)
    r = reg.req("POST", "/v2/s5/blobs/uploads/?digest-algorithm=sha512")
    assert r.status == 202
    loc = r.headers["Location"]
    reg.req("PATCH", loc, data[:100], {"Content-Range": "0-99"})
    r = reg.req("PUT", f"{loc}?digest={d}", data[100:], {"Content-Range": f"100-{len(data) - 1}"})
    assert r.status == 201 and r.headers["Docker-Content-Digest"] == d
    r = reg.req("GET", f"/v2/s5/blobs/{d}")
    assert r.status == 200 and r.body == data and r.headers["Docker-Content-Digest"] == d
    # sha512 digest on an upload started as sha256: re-hashed at commit
    d2 = reg.push_blob("s5", b"other", sha512(b"other"))
    assert reg.req("HEAD", f"/v2/s5/blobs/{d2}").status == 200
    r = reg.req("POST", "/v2/s5/blobs/uploads/?digest-algorithm=md5")
    assert r.status == 400


def test_mount_from_other_repo_and_anonymous(reg: Reg) -> None:
    d = reg.push_blob("src/repo", b"mount me")
    r = reg.req("POST", f"/v2/dst/repo/blobs/uploads/?mount={d}&from=src/repo")
    assert r.status == 201 and r.headers["Location"] == f"/v2/dst/repo/blobs/{d}"
    assert reg.req("GET", f"/v2/dst/repo/blobs/{d}").body == b"mount me"
    r = reg.req("POST", f"/v2/anon/blobs/uploads/?mount={d}")
    assert r.status == 201
    assert reg.req("HEAD", f"/v2/anon/blobs/{d}").status == 200
    # unknown blob: falls back to an upload session
    r = reg.req("POST", f"/v2/dst/repo/blobs/uploads/?mount={ZERO}&from=src/repo")
    assert r.status == 202 and "/blobs/uploads/" in r.headers["Location"]


def test_delete_blob(reg: Reg) -> None:
    d = reg.push_blob("del", b"bye")
    r = reg.req("DELETE", f"/v2/del/blobs/{d}")
    assert r.status == 202
    assert reg.req("GET", f"/v2/del/blobs/{d}").status == 404
    r = reg.req("DELETE", f"/v2/del/blobs/{d}")
    assert r.status == 404 and r.code == "BLOB_UNKNOWN"


def test_invalid_name(reg: Reg) -> None:
    r = reg.req("POST", "/v2/UPPER/blobs/uploads/")
    assert r.status == 400 and r.code == "NAME_INVALID"
    r = reg.req("GET", f"/v2/a..b/blobs/{ZERO}")
    assert r.status == 400 and r.code == "NAME_INVALID"
    assert not (reg.root / "repositories" / "UPPER").exists()


def test_concurrent_uploads_of_same_blob(reg: Reg) -> None:
    data = os.urandom(2_000_000)

    def push(i: int) -> str:
        return reg.push_blob(f"conc{i % 2}", data)

    with concurrent.futures.ThreadPoolExecutor(6) as ex:
        digests = list(ex.map(push, range(6)))
    assert set(digests) == {sha256(data)}
    for i in range(2):
        assert reg.req("GET", f"/v2/conc{i}/blobs/{sha256(data)}").body == data
    assert [f for f in _files(reg.root) if "/_uploads/" in f] == []


def test_single_post_mismatch_leaves_no_session(reg: Reg) -> None:
    r = reg.req("POST", f"/v2/sp/blobs/uploads/?digest={ZERO}", b"not zero")
    assert r.status == 400 and r.code == "DIGEST_INVALID"
    assert [f for f in _files(reg.root) if "/_uploads/" in f or f.startswith("blobs/")] == []


def test_upload_resumes_after_restart(registry_factory: Any, tmp_path: Path) -> None:
    root = tmp_path / "persist"
    first: Reg = registry_factory(root=root)
    loc = first.req("POST", "/v2/resume/blobs/uploads/").headers["Location"]
    assert first.req("PATCH", loc, b"first half,", {"Content-Range": "0-10"}).status == 202
    os.kill(first.pid, signal.SIGTERM)
    for _ in range(200):  # wait until the old process stopped answering
        try:
            first.req("GET", "/v2/")
            time.sleep(0.05)
        except OSError:
            break
    second: Reg = registry_factory(root=root)
    r = second.req("GET", loc)
    assert r.status == 204 and r.headers["Range"] == "0-10"
    data = b"first half, second half"
    r = second.req("PUT", f"{loc}?digest={sha256(data)}", data[11:],
                   {"Content-Range": f"11-{len(data) - 1}"})
    assert r.status == 201
    assert second.req("GET", f"/v2/resume/blobs/{sha256(data)}").body == data


def test_address_in_use_is_a_clear_error(reg: Reg, tmp_path: Path) -> None:
    port = reg.url.rsplit(":", 1)[1]
    r = subprocess.run([sys.executable, "-m", "dockyard.registry", "serve", "--addr",
                        f"127.0.0.1:{port}", "--root", str(tmp_path / "other")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "cannot listen" in r.stderr


def test_streamed_patch_with_chunked_encoding(reg: Reg) -> None:
    """docker streams a layer in one PATCH with Transfer-Encoding: chunked, then PUTs."""
    parts = [os.urandom(70_000) for _ in range(5)]
    data = b"".join(parts)
    loc = reg.req("POST", "/v2/stream/blobs/uploads/").headers["Location"]
    u = reg.url.split("://")[1]
    import http.client

    conn = http.client.HTTPConnection(*u.split(":"))
    conn.request("PATCH", loc, body=iter(parts), encode_chunked=True,
                 headers={"Transfer-Encoding": "chunked",
                          "Content-Type": "application/octet-stream"})
    r = conn.getresponse()
    r.read()
    conn.close()
    assert r.status == 202 and r.headers["Range"] == f"0-{len(data) - 1}"
    r2 = reg.req("PUT", f"{r.headers['Location']}?digest={sha256(data)}")
    assert r2.status == 201
    assert reg.req("GET", f"/v2/stream/blobs/{sha256(data)}").body == data


def test_crash_mid_upload_leaves_nothing_visible(registry_factory: Any, tmp_path: Path) -> None:
    import socket

    root = tmp_path / "crash"
    first: Reg = registry_factory(root=root)
    data = os.urandom(4_000_000)
    d = sha256(data)
    loc = first.req("POST", "/v2/crash/blobs/uploads/").headers["Location"]
    host, port = first.url.split("://")[1].split(":")
    s = socket.create_connection((host, int(port)))
    s.sendall(f"PUT {loc}?digest={d} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n"
              f"Content-Type: application/octet-stream\r\n\r\n".encode() + data[:1_000_000])
    time.sleep(0.3)  # let the server write part of it
    os.kill(first.pid, signal.SIGKILL)
    s.close()
    for _ in range(200):
        try:
            first.req("GET", "/v2/")
            time.sleep(0.05)
        except OSError:
            break
    assert not any(f.startswith("blobs/") for f in _files(root))
    second: Reg = registry_factory(root=root)
    assert second.req("HEAD", f"/v2/crash/blobs/{d}").status == 404
    r = second.req("GET", loc)  # the session survives, at a consistent offset
    assert r.status == 204
    done = int(r.headers["Range"].split("-")[1]) + 1 if r.headers["Range"] != "0-0" else 0
    assert done <= 1_000_000
    r = second.req("PUT", f"{loc}?digest={d}", data[done:],
                   {"Content-Range": f"{done}-{len(data) - 1}"})
    assert r.status == 201
    assert second.req("GET", f"/v2/crash/blobs/{d}").body == data
