"""pull(ref): resolve a manifest, download what is missing (verified), record the image.

Order, so that a failure at any step leaves no image record and no unverified bytes::

    GET manifest (tag or digest; digest verified)      -> "Pulling from <repo>"  <tag|digest>
      index? pick the platform's manifest, GET it by digest (verified)
    config blob          (skipped when present)        -> content store, verified on commit
    layer blobs, 3 at a time (skipped when present: "Already exists"; no layer lines at all
      when the image itself is present, as dockerd), each streamed into a content-store
      ingest that hashes it on the event loop's thread; a dropped connection resumes with Range
    at the same time, in ONE executor thread, the layers are unpacked in order, each on the
      one below (ChainID), while they download: the extractor reads the growing ingest file
      (feed.py) through ImageService.unpack_stream (gunzip + DiffID hash + the chroot'd
      child), so the two cores share the work (network + blob write + digest | inflate +
      DiffID + extraction); at the end of each layer its digest and size (the writer's hash)
      and DiffID are checked BEFORE its snapshot is committed; a lie discards the snapshot
    the layer blobs are committed (verified again), then the manifest blob
    ImageService.add_image(manifest, repo_tags=[name:tag], repo_digests=[name@digest])
      finds every layer unpacked; the image record is written last
    on any failure: the layers this pull unpacked that no image uses (and no other pull in
      progress relies on) and the blobs it added that no image references are removed again

Progress, per layer id, as dockerd 20.10 sends it for the same image (compared side by side)::

    Pulling fs layer | Already exists        (manifest order), then "Waiting" beyond 3
    Downloading (bytes received) ... Verifying Checksum, Download complete     (_download)
    Extracting (compressed bytes the extractor has read) ... Pull complete    (pullprogress)
      held back until that layer's "Download complete", "Pull complete" right after its
      snapshot commit: layers complete bottom first, each before the next one's Extracting
    Digest: <digest>, Status: Downloaded newer image for <ref> | Image is up to date for <ref>

Measured (210 MB gzip'd random layer, 2 busy cores, library pull from Distribution, runs
interleaved with the old code): ~200 -> ~245 MB/s. The download (network + blob write +
sha256) is now the longer side; the extractor waits for it.

``digest`` (what ``Digest:`` prints and RepoDigests records) is the digest of what the tag
resolved to: the index when the tag names an index, as docker does.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from dockyard.content.store import Writer
from dockyard.distribution import progress as pg
from dockyard.distribution.auth import ANONYMOUS, Credentials
from dockyard.distribution.client import RepoClient, RepositoryUnknown
from dockyard.distribution.endpoints import Endpoint
from dockyard.distribution.feed import Feed, FeedFailed
from dockyard.distribution.pullprogress import ExtractionReport
from dockyard.distribution.service import Distribution
from dockyard.distribution.tasks import run_all
from dockyard.errors import InvalidArgument, NotFound, PermissionDenied
from dockyard.images.platforms import parse_platform, select_manifest
from dockyard.oci import mediatypes as mt
from dockyard.oci import reference
from dockyard.oci.descriptor import Descriptor
from dockyard.oci.identity import chain_ids, chain_on, config_diff_ids

DOWNLOAD_CONCURRENCY = 3  # docker's default max-concurrent-downloads
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PullResult:
    image_id: str
    digest: str  # what the reference resolved to (index or manifest digest)
    reference: str  # familiar form, as printed in "Status: ..."
    up_to_date: bool


async def _noop(_: pg.Message) -> None:
    return None


def _access_error(ref: reference.Reference, e: Exception) -> Exception:
    if isinstance(e, PermissionDenied):
        return PermissionDenied(
            f"pull access denied for {ref.familiar_name}, repository does not exist or may require "
            f"'docker login': {e}"
        )
    if isinstance(e, RepositoryUnknown):
        return NotFound(f"repository {ref.familiar_name} not found: {e}")
    if isinstance(e, NotFound):
        shown = ref.familiar_name + (f"@{ref.digest}" if ref.digest else f":{ref.tag}")
        return NotFound(f"manifest for {shown} not found: {e}")
    return e


async def resolve(dist: Distribution, session: Any, ref: reference.Reference, creds: Credentials,
                  ) -> tuple[RepoClient, bytes, str, str]:
    """(client, manifest bytes, media type, digest) of ``ref``, trying mirrors first."""
    tag_or_digest = ref.digest or ref.tag or reference.DEFAULT_TAG

    async def attempt(ep: Endpoint) -> tuple[RepoClient, bytes, str, str]:
        rc = await dist.open_repo(session, ep, ref.path, creds=creds)
        body, media_type, digest = await rc.get_manifest(tag_or_digest)
        return rc, body, media_type, digest

    try:
        return await dist.with_endpoints(ref.domain, for_pull=True, attempt=attempt)
    except (PermissionDenied, NotFound) as e:
        raise _access_error(ref, e) from None


def _manifest_parts(body: bytes, digest: str) -> tuple[Descriptor, list[Descriptor]]:
    doc = json.loads(body)
    if doc.get("schemaVersion") != 2:
        raise InvalidArgument(f"manifest {digest}: unsupported schemaVersion {doc.get('schemaVersion')!r}")
    config = Descriptor.from_dict(doc.get("config"), where=f"manifest {digest}: config")
    layers = []
    for i, d in enumerate(doc.get("layers") or []):
        desc = Descriptor.from_dict(d, where=f"manifest {digest}: layers[{i}]")
        if desc.media_type not in mt.LAYER_TYPES:
            raise InvalidArgument(f"manifest {digest}: layers[{i}]: unsupported media type {desc.media_type!r}")
        layers.append(desc)
    return config, layers


async def pull(
    dist: Distribution,
    images: Any,
    ref: str,
    *,
    creds: Credentials = ANONYMOUS,
    platform: str | None = None,
    emit: pg.Emit = _noop,
) -> PullResult:
    """Pull ``ref`` (``busybox``, ``host:port/repo:tag``, ``repo@sha256:...``) into ``images``."""
    parsed = reference.parse_normalized(ref)
    wanted = parse_platform(platform) if platform else None
    # dockerd's id of the "Pulling from" line: the tag, else the whole reference (familiar)
    shown_id = parsed.tag if parsed.tag is not None else (
        parsed.familiar() if parsed.digest else reference.DEFAULT_TAG)
    async with dist.pulling(images, str(parsed), platform), dist.session() as session:
        rc, body, media_type, digest = await resolve(dist, session, parsed, creds)
        await emit(pg.status(f"Pulling from {parsed.path}", shown_id))
        top_digest = digest
        if media_type in mt.INDEX_TYPES:
            desc = select_manifest(json.loads(body), platform)
            d = Descriptor.from_dict(desc, where=f"index {digest}: manifest")
            body, media_type, digest = await rc.get_manifest(d.digest)
            if media_type not in mt.MANIFEST_TYPES:
                raise InvalidArgument(f"index {top_digest}: entry {d.digest} is not an image manifest")
        config, layers = _manifest_parts(body, digest)
        store = images.content
        needed = {config.digest, digest, *(x.digest for x in layers)}
        fresh = {d for d in needed if not store.exists(d)}  # what this pull may add
        with dist.claiming(images, needed) as sole:
            try:
                image_id, before = await _fetch_and_record(
                    dist, images, rc, parsed, config, layers, body, digest, top_digest, wanted, emit)
            except BaseException:
                _drop_new_blobs(images, fresh, sole)
                raise
        shown = parsed.familiar()
        up_to_date = before == image_id
        await emit(pg.status(f"Digest: {top_digest}"))
        await emit(pg.status(
            f"Status: Image is up to date for {shown}" if up_to_date
            else f"Status: Downloaded newer image for {shown}"
        ))
        return PullResult(image_id, top_digest, shown, up_to_date)


async def _fetch_and_record(dist: Distribution, images: Any, rc: RepoClient, parsed: reference.Reference, config: Descriptor,
                            layers: list[Descriptor], body: bytes, digest: str, top_digest: str,
                            wanted: tuple[str, str, str] | None, emit: pg.Emit,
                            ) -> tuple[str, str | None]:
    """Config, layers (verified), manifest into the store, then the image record.

    Returns (image id, the image the reference named before)."""
    store = images.content
    if not store.exists(config.digest):
        await rc.fetch_blob(store, config.digest, config.size, kind="image config")
    try:
        cfg = json.loads(store.read(config.digest))
    except ValueError as e:
        raise InvalidArgument(f"image config {config.digest}: invalid JSON: {e}") from None
    if not isinstance(cfg, dict):
        raise InvalidArgument(f"image config {config.digest}: not a JSON object")
    if wanted is not None:
        actual = parse_platform("/".join(x for x in (cfg.get("os"), cfg.get("architecture"),
                                                     cfg.get("variant")) if x))
        if actual[:2] != wanted[:2] or (wanted[2] and actual[2] and wanted[2] != actual[2]):
            raise NotFound(
                f"image with reference {parsed.familiar()} was found but does not match the "
                f"specified platform: wanted {'/'.join(x for x in wanted if x)}, actual: "
                f"{'/'.join(x for x in actual if x)}"
            )
    todo: list[Descriptor] = []
    seen: set[str] = set()
    # dockerd prints no layer lines when the image itself is already here ("If the image
    # already exists locally, no need to pull anything"): only Digest and Status follow.
    have_image = images.exists(config.digest) and all(store.exists(x.digest) for x in layers)
    for layer in [] if have_image else layers:
        ident = pg.short_id(layer.digest)
        if layer.digest in seen:
            continue
        seen.add(layer.digest)
        if store.exists(layer.digest):
            await emit(pg.layer("Already exists", ident))
        else:
            todo.append(layer)
            await emit(pg.layer("Pulling fs layer", ident))
    for layer in todo[DOWNLOAD_CONCURRENCY:]:
        await emit(pg.layer("Waiting", pg.short_id(layer.digest)))
    diff_ids = config_diff_ids(cfg, config.digest, len(layers))
    chains = chain_ids(diff_ids)
    sem = asyncio.Semaphore(DOWNLOAD_CONCURRENCY)
    with dist.claiming(images, set(chains)) as sole, contextlib.ExitStack() as undo:
        committed: list[str] = []  # ChainIDs this pull unpacked: dropped again if it fails

        def drop_committed() -> None:
            for chain in reversed(committed):
                if sole(chain):
                    images.drop_unpacked(chain)

        undo.callback(drop_committed)
        feeds: dict[str, tuple[Writer, Feed]] = {}
        for layer in todo:
            w = undo.enter_context(store.writer())  # aborted unless committed
            feeds[layer.digest] = (w, Feed(w.path))
        report = ExtractionReport(asyncio.get_running_loop(), todo, emit)
        await run_all([*(_download(rc, layer, *feeds[layer.digest], sem, emit, report)
                         for layer in todo),
                       _extract_all(images, layers, diff_ids, feeds, committed, report),
                       report.run()])

        def commit_blobs() -> None:  # verified again (the extractor checked them already)
            for layer in todo:
                feeds[layer.digest][0].commit(expected_digest=layer.digest, expected_size=layer.size)

        await _in_thread(commit_blobs)
        store.put(body, expected_digest=digest)
        name = parsed.name_only()
        tag_ref = str(parsed) if parsed.tag is not None and parsed.digest is None else None
        repo_digest = str(name.with_digest(top_digest))
        before = _current(images, tag_ref or repo_digest)
        image_id = await _in_thread(lambda: images.add_image(
            digest, repo_tags=[tag_ref] if tag_ref else [], repo_digests=[repo_digest]))
        undo.pop_all()
    return image_id, before


async def _in_thread(fn: Callable[[], T]) -> T:
    """Run ``fn`` in an executor thread; a cancelled caller still waits for it to end (or a
    record could appear whose blobs the caller's cleanup just deleted)."""
    fut = asyncio.get_running_loop().run_in_executor(None, fn)
    try:
        return await asyncio.shield(fut)
    except asyncio.CancelledError:
        await asyncio.wait([fut])
        raise


async def _download(rc: RepoClient, layer: Descriptor, writer: Writer, feed: Feed,
                    sem: asyncio.Semaphore, emit: pg.Emit, extraction: ExtractionReport) -> None:
    """Stream one layer blob into its ingest file, telling the extractor of every chunk."""
    ident = pg.short_id(layer.digest)
    throttle = pg.Throttle(layer.size)

    async def report(current: int) -> None:
        if throttle.due(current):
            await emit(pg.transfer("Downloading", ident, current, layer.size))

    def sink(chunk: bytes) -> None:
        writer.write(chunk)
        writer.flush()
        feed.advance(len(chunk))

    try:
        async with sem:
            await rc.stream_blob(layer.digest, layer.size, sink, report)
    except BaseException as e:
        feed.fail(e)
        raise
    feed.finish()
    await emit(pg.layer("Verifying Checksum", ident))
    await emit(pg.layer("Download complete", ident))
    extraction.downloaded(layer.digest)  # its Extracting lines may follow now


async def _extract_all(images: Any, layers: list[Descriptor], diff_ids: list[str],
                       feeds: dict[str, tuple[Writer, Feed]], committed: list[str],
                       report: ExtractionReport) -> None:
    """Unpack the layers in order, each on the one below, in one thread, while they download:
    a layer being downloaded is read from its feed as it arrives, one already stored from the
    store. Digest, size and DiffID are verified before a snapshot is committed."""
    stop = threading.Event()

    def run() -> None:
        parent: str | None = None
        for layer, diff_id in zip(layers, diff_ids, strict=True):
            if stop.is_set():
                raise FeedFailed("the pull was cancelled")
            entry = feeds.get(layer.digest)
            on_read = report.counter(layer.digest)
            with entry[1].reader(on_read) if entry else images.content.open(layer.digest) as src:
                # A stored blob was verified when it was committed; a downloading one is hashed
                # by its writer on the event loop's thread (the other core), checked at its end.
                verify = functools.partial(_verify, src, layer, entry[0]) if entry else _nothing
                if images.unpack_stream(src, diff_id=diff_id, parent_chain=parent, verify=verify,
                                        name=f"layer {layer.digest}"):
                    committed.append(chain_on(parent, diff_id))
                elif entry:  # unpacked already (another image): the download is still verified
                    verify()
                report.extracted(layer.digest)
            parent = chain_on(parent, diff_id)

    fut = asyncio.get_running_loop().run_in_executor(None, run)
    try:
        await asyncio.shield(fut)
    except BaseException:
        # Failed, or cancelled (a download failed, the client went away): wake the thread if
        # it waits for bytes that will not come, and let it end before the caller cleans up.
        stop.set()
        for _, feed in feeds.values():
            feed.fail(FeedFailed("the pull stopped"))
        await asyncio.wait([fut])
        raise


def _nothing() -> None:
    return None


def _verify(src: Any, layer: Descriptor, writer: Writer) -> None:
    """Read ``src`` (a feed) to its end, i.e. until the download is complete, then check the
    digest and size its writer hashed."""
    while src.read(1 << 20):
        pass
    got = writer.current_digest()
    if got != layer.digest or writer.size != layer.size:
        raise InvalidArgument(f"filesystem layer verification failed for digest {layer.digest}: "
                              f"got {got} ({writer.size} of {layer.size} bytes)")


async def pull_all_tags(
    dist: Distribution,
    images: Any,
    name: str,
    *,
    creds: Credentials = ANONYMOUS,
    platform: str | None = None,
    emit: pg.Emit = _noop,
) -> list[PullResult]:
    """``docker pull --all-tags``: every tag of the repository ``name``, one after the other.

    The per-tag "Status:" lines are kept out of the stream; one line for the repository ends
    it, as docker prints it."""
    parsed = reference.parse(name)
    if parsed.tag is not None or parsed.digest is not None:
        raise InvalidArgument(f"tag can't be used with --all-tags/-a: {name}")

    async def tags_of(ep: Endpoint) -> list[str]:
        async with dist.session() as session:
            rc = await dist.open_repo(session, ep, parsed.path, creds=creds)
            return await rc.list_tags()

    try:
        tags = await dist.with_endpoints(parsed.domain, for_pull=True, attempt=tags_of)
    except (PermissionDenied, NotFound) as e:
        raise _access_error(parsed.with_tag(reference.DEFAULT_TAG), e) from None

    async def quiet(m: pg.Message) -> None:
        if not str(m.get("status", "")).startswith("Status: "):
            await emit(m)

    results = [await pull(dist, images, str(parsed.with_tag(t)), creds=creds, platform=platform,
                          emit=quiet) for t in sorted(tags)]
    fresh = not all(r.up_to_date for r in results)
    await emit(pg.status(f"Status: Downloaded newer image for {parsed.familiar_name}" if fresh
                         else f"Status: Image is up to date for {parsed.familiar_name}"))
    return results


def _drop_new_blobs(images: Any, fresh: set[str], sole: Callable[[str], bool]) -> None:
    """After a failed pull: delete the blobs it added that no image references and no other
    pull in progress relies on (a lying registry must leave nothing behind)."""
    used: set[str] = set()
    for img in images.list():
        used.update({img.id, img.manifest_digest, *(x.digest for x in img.layer_blobs)})
    for d in fresh - used:
        if sole(d) and images.content.exists(d):
            with contextlib.suppress(OSError, NotFound):
                images.content.delete(d)


def _current(images: Any, ref: str) -> str | None:
    try:
        return str(images.resolve(ref))
    except (NotFound, InvalidArgument):
        return None
