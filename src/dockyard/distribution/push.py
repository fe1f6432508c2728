"""push(ref): send a local image's stored blobs and manifest to its registry, as they are.

Per tag (``ref`` without a tag pushes every tag of that repository, as the Engine API does)::

    "The push refers to repository [<name>]"
    each layer, top first (as dockerd lists them), 5 at a time ("Preparing"):
      HEAD blob -> 200: "Layer already exists"
      else, when the blob is known in another repository of that registry (a local image
        holding it is tagged/digested there): POST ?mount=<digest>&from=<repo> -> 201:
        "Mounted from <repo>" (up to 3 candidates; a refused mount's session is reused)
      else POST upload -> PUT <Location>&digest=<digest> streaming the stored blob (no
        recompression, which is what makes docker push slow) -> "Pushed"
    config blob the same way (no progress lines, as docker)
    PUT manifest <tag> with its stored bytes and media type (the digest is unchanged)
    "<tag>: digest: sha256:... size: N" + aux {"Tag", "Digest", "Size"}
    RepoDigests += name@digest

Layer ids in progress lines are the short DiffIDs, as docker prints them.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from dockyard.distribution import progress as pg
from dockyard.distribution.auth import ANONYMOUS, Credentials
from dockyard.distribution.client import RepoClient, sha256
from dockyard.distribution.endpoints import Endpoint
from dockyard.distribution.service import Distribution
from dockyard.distribution.tasks import run_all
from dockyard.errors import InvalidArgument, NotFound
from dockyard.oci import reference
from dockyard.oci.descriptor import Descriptor

UPLOAD_CONCURRENCY = 5  # docker's default max-concurrent-uploads
MAX_MOUNT_SOURCES = 3


@dataclass(frozen=True, slots=True)
class PushResult:
    tag: str
    digest: str
    size: int


async def _noop(_: pg.Message) -> None:
    return None


def _tags_to_push(images: Any, parsed: reference.Reference) -> list[str]:
    if parsed.tag is not None:
        return [parsed.tag]
    tags = sorted(
        r.split(":")[-1] for r, _, kind in images.records.all_refs()
        if kind == "tag" and r.rsplit(":", 1)[0] == parsed.name
    )
    if not tags:
        raise NotFound(f"An image does not exist locally with the tag: {parsed.familiar_name}")
    return tags


def _mount_sources(images: Any, image_id: str, digests: list[str],
                   parsed: reference.Reference) -> dict[str, list[str]]:
    """For each blob, other repositories on the same registry it is known to be in.

    Known = a local image holding that blob carries a tag or digest of that repository (it was
    pulled from or pushed there). The image's own repositories come first; at most
    MAX_MOUNT_SOURCES per blob, as docker tries a few and then uploads."""
    wanted = set(digests)
    out: dict[str, list[str]] = {d: [] for d in digests}
    recs = sorted(images.records.all(), key=lambda r: r.id != image_id)
    for rec in recs:
        held = wanted & {x.digest for x in rec.layers}
        if not held:
            continue
        for r, _kind in images.records.refs_of(rec.id):
            p = reference.parse(r)
            if p.domain != parsed.domain or p.path == parsed.path:
                continue
            for d in held:
                if p.path not in out[d] and len(out[d]) < MAX_MOUNT_SOURCES:
                    out[d].append(p.path)
    return out


async def push(
    dist: Distribution,
    images: Any,
    ref: str,
    *,
    creds: Credentials = ANONYMOUS,
    emit: pg.Emit = _noop,
) -> list[PushResult]:
    parsed = reference.parse(ref)
    if parsed.digest is not None:
        raise InvalidArgument(f"cannot push a digest reference: {ref}")
    tags = _tags_to_push(images, parsed)
    # Validate every tag before sending anything.
    ids = [images.resolve(str(parsed.with_tag(t))) for t in tags]
    results = []
    await emit(pg.status(f"The push refers to repository [{parsed.name}]"))
    async with dist.session() as session:
        for tag, image_id in zip(tags, ids, strict=True):
            results.append(await _push_one(dist, session, images, parsed.with_tag(tag), image_id,
                                           creds, emit))
    return results


async def _push_one(dist: Distribution, session: Any, images: Any, ref: reference.Reference,
                    image_id: str, creds: Credentials, emit: pg.Emit) -> PushResult:
    assert ref.tag is not None
    img = images.get(image_id)
    body, media_type = images.manifest(image_id)
    doc = json.loads(body)
    config = Descriptor.from_dict(doc.get("config"), where="manifest config")
    layers = [Descriptor.from_dict(d, where=f"manifest layers[{i}]")
              for i, d in enumerate(doc.get("layers") or [])]
    diff_ids = list(img.diff_ids)
    sources = _mount_sources(images, image_id, [x.digest for x in layers], ref)
    # One token covers every repository a blob may be mounted from (pull access there).
    source_repos = sorted({r for rs in sources.values() for r in rs})

    async def attempt(ep: Endpoint) -> RepoClient:
        return await dist.open_repo(session, ep, ref.path, creds=creds, actions="pull,push",
                                    extra_scopes=tuple(f"repository:{s}:pull" for s in source_repos))

    rc = await dist.with_endpoints(ref.domain, for_pull=False, attempt=attempt)
    store = images.content

    def ident(i: int) -> str:
        return pg.short_id(diff_ids[i] if i < len(diff_ids) else layers[i].digest)

    # top layer first, as dockerd walks an image from its top layer to the base
    order = list(range(len(layers)))[::-1]
    for i in order:
        await emit(pg.layer("Preparing", ident(i)))
    for i in order[UPLOAD_CONCURRENCY:]:
        await emit(pg.layer("Waiting", ident(i)))
    sem = asyncio.Semaphore(UPLOAD_CONCURRENCY)
    done: set[str] = set()

    async def send(i: int, desc: Descriptor, quiet: bool = False) -> None:
        async with sem:
            if desc.digest in done:
                return
            if await rc.blob_exists(desc.digest):
                done.add(desc.digest)
                if not quiet:
                    await emit(pg.layer("Layer already exists", ident(i)))
                return
            location = None
            for src in sources.get(desc.digest, []):
                if location is not None:  # the previous, refused mount opened a session: drop it
                    await rc.cancel_upload(location)
                location = await rc.start_upload(mount=desc.digest, from_repo=src)
                if location is None:
                    done.add(desc.digest)
                    if not quiet:
                        await emit(pg.layer(f"Mounted from {src}", ident(i)))
                    return
            # A refused mount leaves an upload session open: the upload below uses it.
            throttle = pg.Throttle(desc.size)

            async def report(current: int) -> None:
                if not quiet and throttle.due(current):
                    await emit(pg.transfer("Pushing", ident(i), current, desc.size))

            await rc.upload_blob(store, desc.digest, store.size(desc.digest), report, location)
            done.add(desc.digest)
            if not quiet:
                await emit(pg.layer("Pushed", ident(i)))

    await run_all(send(i, layers[i]) for i in order)
    await send(-1, config, quiet=True)
    digest = await rc.put_manifest(ref.tag, body, media_type)
    if digest != sha256(body):
        raise InvalidArgument("internal: manifest digest changed")
    await asyncio.get_running_loop().run_in_executor(
        None, images.set_repo_digest, image_id, str(ref.name_only().with_digest(digest)))
    await emit(pg.status(f"{ref.tag}: digest: {digest} size: {len(body)}"))
    await emit(pg.aux({"Tag": ref.tag, "Digest": digest, "Size": len(body)}))
    return PushResult(ref.tag, digest, len(body))
