"""The /build router over HTTP (aiohttp test server, real image store and runtime, as root).

Independent of the daemon's wiring: the router is mounted on a bare app with the same middleware
contract (errors -> status), the services object carries ``cfg`` and ``images`` like dockyardd's.
"""

from __future__ import annotations

import asyncio
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from dockyard.api import build as build_api
from dockyard.api.common import SERVICES
from dockyard.errors import DockyardError
from dockyard.images.service import ImageService

pytestmark = pytest.mark.root

RUNTIME = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "dockyard-runtime")


@dataclass
class _Cfg:
    data_root: Path
    exec_root: Path

    def runtime_path(self) -> str:
        return RUNTIME


@dataclass
class _Services:
    cfg: _Cfg
    images: ImageService


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


async def _session(services: _Services, fn: Any) -> Any:
    @web.middleware
    async def errors(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            return await handler(request)
        except DockyardError as e:
            return web.json_response({"message": str(e)}, status=400)

    app = web.Application(middlewares=[errors])
    app[SERVICES] = services
    build_api.routes(lambda m, p, h: app.router.add_route(m, p, h))
    async with TestClient(TestServer(app)) as client:
        return await fn(client)


def _lines(raw: bytes) -> list[dict[str, Any]]:
    return [json.loads(x) for x in raw.splitlines() if x.strip()]


def test_build_over_http(tmp_path: Path, busybox_rootfs: Path) -> None:
    images = ImageService(tmp_path / "data" / "image")
    try:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            tf.add(busybox_rootfs, arcname=".")
        buf.seek(0)
        images.import_tarball(buf, repo_tag="busybox:latest")
        services = _Services(_Cfg(tmp_path / "data", tmp_path / "exec"), images)
        ctx = _tar({"Dockerfile": b"FROM busybox\nARG A\nLABEL a=$A\nRUN echo run-$A\n", "f": b"x"})

        async def scenario(client: TestClient) -> dict[str, Any]:
            out: dict[str, Any] = {}
            q = {"t": ["h:1", "h:2"], "buildargs": json.dumps({"A": "v", "B": None}),
                 "labels": json.dumps({"l": "1"})}
            params = [("t", t) for t in q["t"]] + [("buildargs", q["buildargs"]), ("labels", q["labels"])]
            r = await client.post("/build", params=params, data=ctx)
            out["status"], out["msgs"] = r.status, _lines(await r.read())
            r = await client.post("/build", params=[("q", "1"), ("buildargs", q["buildargs"]),
                                                    ("labels", q["labels"])], data=ctx)
            out["quiet"] = _lines(await r.read())
            r = await client.post("/build", params=[("buildargs", "[1]")], data=ctx)
            out["bad_status"] = r.status
            r = await client.post("/build", params=[("dockerfile", "nope")], data=ctx)
            out["missing"] = _lines(await r.read())
            r = await client.post("/build/prune")
            out["prune"] = await r.json()
            return out

        res = asyncio.run(_session(services, scenario))
        assert res["status"] == 200
        text = "".join(m.get("stream", "") for m in res["msgs"])
        assert "run-v\n" in text and "Successfully tagged h:1\n" in text and "Successfully tagged h:2\n" in text
        iid = next(m["aux"]["ID"] for m in res["msgs"] if "aux" in m)
        assert images.resolve("h:2") == iid
        assert images.config_of(iid)["config"]["Labels"] == {"a": "v", "l": "1"}
        assert res["quiet"] == [{"stream": iid + "\n"}]  # fully cached: the same image
        assert res["bad_status"] == 400
        assert res["missing"][-1]["error"] == "Cannot locate specified Dockerfile: nope"
        # the cached images are tagged or have children: kept; the cache entries are gone
        assert res["prune"]["CachesDeleted"] == [] and isinstance(res["prune"]["SpaceReclaimed"], int)
        assert build_api.builder_of(services).usage()[0] == 0 and images.exists("h:1")
    finally:
        images.close()
