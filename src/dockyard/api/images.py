"""Image routes: list, inspect, history, tag, remove, import/pull (create), load, save, commit, prune."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from dockyard import errors
from dockyard.api import streams, versions, wire
from dockyard.api.common import api_version, body_json, qbool, reply, services
from dockyard.daemon import filters
from dockyard.daemon.state import COMMIT_PAUSE_MARKER, Status


def _run(fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    return asyncio.get_running_loop().run_in_executor(None, lambda: fn(*args, **kw))


async def list_(request: web.Request) -> web.StreamResponse:
    s = services(request)
    flt = filters.parse(request.query.get("filters"))
    filters.check_keys(flt, {"dangling", "label", "before", "since", "reference", "until"})
    imgs = await _run(s.images.list)
    # before/since: created strictly before/after the named image; until: before that time
    bounds: list[tuple[str, float]] = []
    for key in ("before", "since"):
        for ref in flt.get(key, []):
            other = await _run(s.images.get, ref)
            bounds.append((key, wire.image_summary(other)["Created"]))
    bounds += [("before", filters.timestamp(v)) for v in flt.get("until", [])]
    out = []
    for img in imgs:
        created = wire.image_summary(img)["Created"]
        if any(created >= t if key == "before" else created <= t for key, t in bounds):
            continue
        if flt.get("dangling"):
            dangling = not img.repo_tags
            if (flt["dangling"][0].lower() in ("true", "1")) != dangling:
                continue
        if flt.get("label") and not filters.label_match(img.container_config.get("Labels") or {}, flt["label"]):
            continue
        if flt.get("reference"):
            import fnmatch
            if not any(fnmatch.fnmatch(t, pat) or fnmatch.fnmatch(t.rsplit(":", 1)[0], pat)
                       for t in img.repo_tags for pat in flt["reference"]):
                continue
        if not qbool(request, "all") and not img.repo_tags and any(
                other.parent == img.id for other in imgs):
            continue
        out.append(versions.image_summary(wire.image_summary(img), api_version(request)))
    out.sort(key=lambda x: x["Created"], reverse=True)
    return reply(out)


async def inspect(request: web.Request) -> web.StreamResponse:
    img = await _run(services(request).images.get, request.match_info["name"])
    legacy = versions.legacy_image_fields(request.headers.get("User-Agent", ""))
    return reply(versions.image_inspect(wire.image_inspect(img), api_version(request), legacy))


async def history(request: web.Request) -> web.StreamResponse:
    entries = await _run(services(request).images.history, request.match_info["name"])
    return reply([{"Id": e.id, "Created": e.created, "CreatedBy": e.created_by, "Tags": list(e.tags) or None,
                   "Size": e.size, "Comment": e.comment} for e in entries])


async def tag(request: web.Request) -> web.StreamResponse:
    repo = request.query.get("repo")
    if not repo:
        raise errors.InvalidArgument("repository name must have at least one component")
    await _run(services(request).images.tag, request.match_info["name"], repo, request.query.get("tag") or None)
    services(request).events.emit("image", "tag", request.match_info["name"], {"name": repo})
    return web.Response(status=201)


async def remove(request: web.Request) -> web.StreamResponse:
    s = services(request)
    name = request.match_info["name"]
    force = qbool(request, "force")
    image_id = await _run(s.images.resolve, name)
    users = [r for r in s.containers.containers.values() if r.image_id == image_id]
    if users:
        img = await _run(s.images.get, name)
        short = image_id.split(":")[1][:12]
        by_id = image_id.split(":")[1].startswith(name.removeprefix("sha256:"))
        running = [r for r in users if r.status in (Status.RUNNING, Status.PAUSED, Status.RESTARTING)]
        deletes = by_id or len(img.repo_tags) <= 1  # untagging the last name deletes the image
        if deletes and running and (force or by_id):
            raise errors.Conflict(f"conflict: unable to delete {short} (cannot be forced) - image is "
                                  f"being used by running container {running[0].id[:12]}")
        if deletes and not force:
            if by_id:
                raise errors.Conflict(f"conflict: unable to delete {short} (must be forced) - image is "
                                      f"being used by stopped container {users[0].id[:12]}")
            raise errors.Conflict(f'conflict: unable to remove repository reference "{name}" (must force) '
                                  f"- container {users[0].id[:12]} is using its referenced image {short}")
    result = await _run(s.images.remove, name, force=force, noprune=qbool(request, "noprune"))
    for item in result:
        for k, v in item.items():
            s.events.emit("image", "untag" if k == "Untagged" else "delete", v, {"name": v})
    return reply(result)


async def create(request: web.Request) -> web.StreamResponse:
    s = services(request)
    q = request.query
    if q.get("fromSrc") is not None:
        src = q["fromSrc"]
        if src != "-":
            raise errors.NotImplementedYet("importing from a URL is not supported; use fromSrc=-")
        repo = q.get("repo") or ""
        t = q.get("tag") or ""
        repo_tag = f"{repo}:{t}" if repo and t else (repo or None)
        changes = q.getall("changes", [])
        reader = streams.BodyReader(request.content, asyncio.get_running_loop())
        image_id = await _run(s.images.import_tarball, reader, repo_tag=repo_tag, changes=changes,
                              message=q.get("message", ""), platform=q.get("platform") or None)
        s.events.emit("image", "import", image_id, {"name": repo_tag or image_id})
        return reply({"status": image_id})
    if q.get("fromImage"):
        ref = q["fromImage"] + (f":{q['tag']}" if q.get("tag") and "@" not in q["fromImage"] else
                                (f"@{q['tag']}" if q.get("tag", "").startswith("sha256:") else ""))
        puller = getattr(s, "pull", None)
        if puller is None:
            raise errors.NotFound(f"pull access denied for {q['fromImage']}, repository does not exist "
                                  "or may require 'docker login': no registry is reachable from this daemon")
        return await puller(request, ref)
    raise errors.InvalidArgument("either fromSrc or fromImage is required")


async def load(request: web.Request) -> web.StreamResponse:
    s = services(request)
    try:
        async with streams.PrefetchReader(request.content) as reader:
            lines = await _run(s.images.load, reader)
    except errors.DockyardError as e:
        # dockerd answers 200 and reports a failed load in the JSON stream (docker-py raises
        # ImageLoadError from it; the docker CLI prints it and exits 1)
        msg = str(e)
        return web.Response(status=200, content_type="application/json",
                            body=json.dumps({"errorDetail": {"message": msg}, "error": msg}).encode() + b"\n")
    quiet = qbool(request, "quiet")
    body = b"".join(json.dumps({"stream": line + "\n"}).encode() + b"\n" for line in lines) if not quiet else \
        b"".join(json.dumps({"stream": line + "\n"}).encode() + b"\n" for line in lines)
    for line in lines:
        s.events.emit("image", "load", line.split(": ", 1)[-1], {})
    return web.Response(status=200, body=body, content_type="application/json")


async def save(request: web.Request) -> web.StreamResponse:
    s = services(request)
    names = request.query.getall("names", []) or ([request.match_info["name"]] if "name" in request.match_info else [])
    if not names:
        raise errors.InvalidArgument("no image names given")
    for n in names:
        await _run(s.images.resolve, n)
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/x-tar"})
    await resp.prepare(request)
    await streams.write_from_thread(resp, lambda out: s.images.save(names, out))
    await resp.write_eof()
    return resp


async def commit(request: web.Request) -> web.StreamResponse:
    s = services(request)
    q = request.query
    rec = s.containers.get(q.get("container", ""))
    config = await body_json(request)
    repo = q.get("repo") or ""
    t = q.get("tag") or ""
    repo_tag = (f"{repo}:{t}" if t else repo) if repo else None
    paused = False
    # journaled: a daemon killed while the commit holds the container paused resumes it at start
    marker = s.containers.store.dir(rec.id) / COMMIT_PAUSE_MARKER
    if qbool(request, "pause", True) and rec.status is Status.RUNNING:
        try:
            marker.touch()
            await s.containers.pause(rec.id)
            paused = True
        except errors.DockyardError:
            paused = False
    try:
        image_id = await _run(s.images.commit, rec.id, parent_image_id=rec.image_id, config=config or rec.config,
                              repo_tag=repo_tag, comment=q.get("comment", ""), author=q.get("author", ""),
                              changes=q.getall("changes", []), container=rec.id)
    finally:
        if paused:
            await s.containers.unpause(rec.id)
        marker.unlink(missing_ok=True)
    s.events.emit("container", "commit", rec.id, {"comment": q.get("comment", ""), "imageID": image_id})
    return reply({"Id": image_id}, status=201)


async def prune(request: web.Request) -> web.StreamResponse:
    s = services(request)
    flt = filters.parse(request.query.get("filters"))
    dangling = (flt.pop("dangling", ["true"]) or ["true"])[0].lower() in ("true", "1")
    used = {r.image_id for r in s.containers.containers.values()}
    res = await _run(s.images.prune, dangling_only=dangling, filters=flt, keep=used)
    return reply(res)


async def search(request: web.Request) -> web.StreamResponse:
    raise errors.NotImplementedYet("image search is not supported: Dockyard has no index to search")


def routes(add: Callable[..., None]) -> None:
    add("GET", "/images/json", list_)
    add("POST", "/images/create", create)
    add("POST", "/images/load", load)
    add("GET", "/images/get", save)
    add("POST", "/images/prune", prune)
    add("GET", "/images/search", search)
    add("POST", "/commit", commit)
    add("GET", "/images/{name:.+}/json", inspect)
    add("GET", "/images/{name:.+}/history", history)
    add("GET", "/images/{name:.+}/get", save)
    add("POST", "/images/{name:.+}/tag", tag)
    add("DELETE", "/images/{name:.+}", remove)
