"""The build executor: Dockerfile + context -> image, reporting like docker's classic builder.

``Builder(images, root, runtime, state_dir)`` (one per daemon; builds may run concurrently,
each in its own thread, their state in a ``_Job``): ``build_tar(stream, options, emit)`` (the
context as the client sent it, read once by ``context.TarContext``) or ``build_dir(path,
options, emit)`` -> image id, or None on failure. ``emit`` receives the JSON-lines messages
the Engine API streams, as they happen (``{"stream": "Step 1/5 : FROM busybox\\n"}``,
``{"stream": " ---> Using cache\\n"}``, ``{"aux": {"ID": "sha256:..."}}``, ``{"errorDetail":
{"message": m}, "error": m}``); with ``quiet`` only the final ``{"stream": "sha256:...\\n"}``
and errors. ``prune()`` and ``usage()`` serve ``/build/prune`` and system df.

The loop (see ``builder/__init__``): parse -> ``stages.plan`` -> per needed stage: base image
(or ``scratch``, or an earlier stage), its ONBUILD triggers, then every instruction:

* ARG: declared in the scope (no image: values never reach history or config);
* metadata (ENV LABEL CMD ENTRYPOINT EXPOSE USER VOLUME STOPSIGNAL HEALTHCHECK SHELL ONBUILD
  MAINTAINER WORKDIR): ``config.ConfigBuilder`` -> ``images.derive`` (empty_layer history);
  WORKDIR also creates the directory when the base lacks it (then it is a layer);
* RUN: snapshot of the parent -> container via the OCI runtime (``steps.run``; ours is
  started through the pre-forked ``forkserver`` helper unless DOCKYARD_BUILD_NO_FORKSERVER is
  set) -> ``images.commit(consume=True)``: the step's upper directory becomes the layer;
* COPY/ADD: sources resolved in scope (context, another stage, an image) -> ``steps.copy``
  into the mounted snapshot -> commit (in place, as for RUN).

Every step first asks the cache (``cache``) with a key over the parent image id and the
step's expanded inputs (files by content); a hit reuses the image and starts nothing.
Failures name the Dockerfile line; each step undoes what it set up (mounts, snapshots,
bundles, containers) through an ExitStack, and no tag is written unless the build succeeds.

Layout under ``root`` (``<data-root>/builder``): ``cache.db``, ``mounts/`` (see ``cache``),
``files/`` (files COPY wrote, hard-linked into later layers: ``linkcache``),
``tmp/build-XXXX/`` (one build: the context spool, ``snap-*/`` step bundles with their rootfs
mounts, ``mounts-*/`` private RUN mount sources, ``heredoc-*/``; removed when the build ends,
swept with ``build-*`` snapshots and step containers when a Builder starts).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from dockyard.builder import instructions as ins
from dockyard.builder.cache import BuildCache, slot_of, step_key
from dockyard.builder.cancel import Cancelled
from dockyard.builder.config import ConfigBuilder
from dockyard.builder.context import BuildContext, DirContext, TarContext
from dockyard.builder.dockerignore import PatternMatcher
from dockyard.builder.expand import expand_instruction
from dockyard.builder.forkserver import ForkServer
from dockyard.builder.linkcache import LinkCache
from dockyard.builder.scope import PROXY_ARGS, StageScope, platform_args
from dockyard.builder.snapshot import KEY_PREFIX, StepSnapshot, unmount_quiet
from dockyard.builder.squash import squash
from dockyard.builder.stages import SCRATCH, BuildPlan, plan
from dockyard.builder.steps.copy import Links, copy_from_context, copy_into, resolve_owner
from dockyard.builder.steps.mounts import prepare_mounts
from dockyard.builder.steps.run import RunMount, RunSpec, run_container
from dockyard.builder.values import context_source, copy_dest, parse_chmod, source_kind
from dockyard.errors import DockyardError, InvalidArgument, NotFound
from dockyard.linux.pathres import resolve
from dockyard.oci import reference
from dockyard.snapshots.mount import mount_all, unmount_all

Emit = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class BuildOptions:
    dockerfile: str = "Dockerfile"  # relative to the context, or an absolute path
    dockerfile_text: str | None = None  # wins over ``dockerfile`` (stdin, remote)
    tags: tuple[str, ...] = ()
    build_args: Mapping[str, str] = field(default_factory=dict)
    target: str | None = None
    no_cache: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    network: str = "default"
    extra_hosts: tuple[str, ...] = ()  # "name:ip" lines for the RUN steps' /etc/hosts (--add-host)
    squash: bool = False
    quiet: bool = False
    platform: str | None = None
    pull: bool = False
    secrets: Mapping[str, bytes] = field(default_factory=dict)
    cancel: threading.Event | None = None  # set by the caller when the client went away
    # pulls a FROM image missing from the store (the API's registry client, with the
    # credentials of X-Registry-Config) and returns its id; None: local images only
    fetch_base: Callable[[str], str] | None = None


class StepFailed(InvalidArgument):
    """A step failed; the message is what the user sees (it names the Dockerfile line)."""


_GLOB = re.compile(r"[*?\[]")


def _short(image_id: str) -> str:
    return image_id.split(":", 1)[-1][:12]


def _sha(data: str) -> str:
    return hashlib.sha256(data.encode()).hexdigest()


def _is_archive(path: Path) -> bool:
    from dockyard.diff.decompress import NONE, detect

    try:
        with open(path, "rb") as f:
            head = f.read(1024)
    except OSError:
        return False
    if detect(head) != NONE:
        return True
    return len(head) >= 262 and head[257:262] == b"ustar"


@dataclass
class _Stage:
    image: str | None  # current image id (None: scratch with nothing yet)
    scope: StageScope
    cfg: ConfigBuilder


@dataclass
class _Job:
    """The state of one build (a Builder serves concurrent builds: nothing per build on it)."""

    ctx: BuildContext
    opts: BuildOptions
    out: _Output
    work: Path
    bp: BuildPlan | None = None
    stages: dict[int, _Stage] = field(default_factory=dict)
    step_no: int = 0
    total: int = 0
    escape: str = "\\"

    @property
    def plan(self) -> BuildPlan:
        assert self.bp is not None
        return self.bp


class Builder:
    def __init__(self, images: Any, root: Path, runtime: str, state_dir: Path) -> None:
        self.images = images
        self.root = Path(root)
        self.runtime = runtime
        self.state_dir = Path(state_dir)
        self.cache = BuildCache(self.root)
        self.tmp = self.root / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)
        self._forkserver: ForkServer | None = None
        self._fs_lock = threading.Lock()
        self.links = LinkCache(self.root / "files")
        self._links_pruned = time.monotonic()
        self._recover()

    def _recover(self) -> None:
        """Undo what builds of a killed daemon left: temp dirs (and mounts in them), step
        containers in the runtime's state dir, ``build-*`` snapshots."""
        for e in os.scandir(self.tmp):
            _sweep(Path(e.path), self.images)
        if self.state_dir.is_dir():
            for e in os.scandir(self.state_dir):
                if e.is_dir() and re.fullmatch(r"[0-9a-f]{64}", e.name):
                    subprocess.run([self.runtime, "--root", str(self.state_dir), "delete", "--force", e.name],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        self.links.prune()
        snaps = getattr(self.images, "snapshots", None)
        if snaps is not None:
            for info in snaps.list():
                if info.key.startswith(KEY_PREFIX):
                    try:
                        self.images.remove_rootfs(info.key)
                    except DockyardError:
                        pass  # a child snapshot still uses it; the next start retries

    # ------------------------------------------------------------------ entry points

    def build_dir(self, context_dir: Path, options: BuildOptions, emit: Emit) -> str | None:
        """Build from a directory used in place. ``emit`` may raise :class:`Cancelled` to stop."""
        with ExitStack() as stack:
            work = self._workdir(stack)
            try:
                ctx = DirContext(Path(context_dir), options.dockerfile)
            except DockyardError as e:
                _error(emit, str(e))
                return None
            return self._build(ctx, options, emit, work)
        return None  # pragma: no cover

    def build_tar(self, stream: BinaryIO, options: BuildOptions, emit: Emit) -> str | None:
        with ExitStack() as stack:
            work = self._workdir(stack)
            try:
                ctx = TarContext.load(stream, work, options.dockerfile)
            except DockyardError as e:
                _error(emit, str(e))
                return None
            stack.callback(ctx.close)
            return self._build(ctx, options, emit, work)
        return None  # pragma: no cover

    def prune(self) -> tuple[list[str], int]:
        deleted, reclaimed = self.cache.prune(self.images)
        return deleted, reclaimed + self.links.prune()

    def usage(self) -> tuple[int, int]:
        return self.cache.usage()

    # ------------------------------------------------------------------ the build

    def _workdir(self, stack: ExitStack) -> Path:
        work = Path(tempfile.mkdtemp(prefix="build-", dir=self.tmp))
        stack.callback(_sweep, work, self.images)
        return work

    def _build(self, ctx: BuildContext, opts: BuildOptions, emit: Emit, work: Path) -> str | None:
        out = _Output(emit, opts.quiet)
        now = time.monotonic()
        if now - self._links_pruned > 300:
            # files only deleted images linked: freed within minutes, not at the next restart
            self._links_pruned = now
            self.links.prune()
        try:
            image_id = self._run(_Job(ctx, opts, out, work))
        except Cancelled:
            return None
        except DockyardError as e:
            _error(emit, str(e))
            return None
        except OSError as e:
            _error(emit, f"build failed: {e}")
            return None
        if opts.quiet:
            emit({"stream": image_id + "\n"})
            return image_id
        emit({"aux": {"ID": image_id}})
        out.stream(f"Successfully built {_short(image_id)}\n")
        for t in opts.tags:
            out.stream(f"Successfully tagged {reference.parse_normalized(t).familiar()}\n")
        return image_id

    def _dockerfile_text(self, ctx: BuildContext, opts: BuildOptions) -> str:
        if opts.dockerfile_text is not None:
            return opts.dockerfile_text
        name = opts.dockerfile or "Dockerfile"
        if os.path.isabs(name):
            try:
                return Path(name).read_text(encoding="utf-8", errors="replace")
            except OSError:
                raise NotFound(f"Cannot locate specified Dockerfile: {name}") from None
        rel = ctx.resolve(name)
        if ctx.kind(rel) != "file":
            raise NotFound(f"Cannot locate specified Dockerfile: {name}")
        return ctx.read_file(rel).decode("utf-8", "replace")

    def _run(self, job: _Job) -> str:
        ctx, opts, out, work = job.ctx, job.opts, job.out, job.work
        tags = []
        for t in opts.tags:
            ref = reference.parse_normalized(t)
            if ref.digest is not None:
                raise InvalidArgument(f"invalid reference format: {t!r}: a tag may not hold a digest")
            tags.append(ref)
        df = ins.parse_dockerfile(self._dockerfile_text(ctx, opts))
        from dockyard.images.platforms import host_platform

        os_, arch, variant = host_platform()
        host = f"{os_}/{arch}" + (f"/{variant}" if variant else "")
        pargs = platform_args(opts.platform or host, host)
        bp = job.bp = plan(df, opts.build_args, opts.target, pargs)
        job.escape = df.escape
        for w in bp.warnings:
            out.stream(f"[WARNING]: {w}\n")
        job.total = len(df.instructions) + (1 if opts.labels else 0)
        globals_ = dict(bp.global_args)
        for meta in bp.meta_args:
            self._step(job, meta)
        stages = job.stages
        for idx in bp.order:
            rs = bp.stages[idx]
            st = rs.stage
            self._step(job, st.from_)
            if rs.base_stage is not None:
                parent = stages[rs.base_stage]
                cur = _Stage(parent.image, parent.scope.child(), parent.cfg.child())
                # an image built FROM a stage runs that stage's ONBUILD triggers, as FROM <image> does
                triggers: list[str] = list(parent.cfg.config.get("OnBuild") or [])
            elif rs.base == SCRATCH:
                cur = _Stage(None, StageScope.from_image(opts.build_args, globals_, (), df.escape), ConfigBuilder({}))
                triggers = []
            else:
                image_id = self._base_image(rs.base, opts, st.from_.line)
                cfg = (self.images.config_of(image_id).get("config") or {})
                cur = _Stage(image_id, StageScope.from_image(opts.build_args, globals_, cfg.get("Env") or (), df.escape),
                             ConfigBuilder(cfg, author=""))
                triggers = list(cfg.get("OnBuild") or [])
            if cur.image is not None:
                out.stream(f" ---> {_short(cur.image)}\n")
            body: list[ins.Instruction] = []
            if triggers:
                out.stream(f"# Executing {len(triggers)} build trigger{'s' if len(triggers) > 1 else ''}\n")
                for t in triggers:
                    try:
                        body.append(ins.parse_trigger(t, df.escape))
                    except InvalidArgument as e:
                        raise InvalidArgument(f"dockerfile parse error on line {st.from_.line}: {e}") from None
            for instr in body:
                self._dispatch(job, cur, instr)
            for instr in st.instructions:
                self._step(job, instr)
                self._dispatch(job, cur, instr)
            if idx == bp.target and opts.labels:
                job.step_no += 1
                text = "LABEL " + " ".join(f"{json.dumps(k)}={json.dumps(v)}" for k, v in sorted(opts.labels.items()))
                out.stream(f"Step {job.step_no}/{job.total} : {text}\n")
                lab = ins.Label(pairs=tuple(sorted(opts.labels.items())), line=0, end_line=0, original=text)
                self._metadata(job, cur, lab, workdir=False)
            if cur.image is None:
                cur.image = self.images.derive(None, config=cur.cfg.config, created_by="")
            stages[idx] = cur
        final = stages[bp.target].image
        assert final is not None
        declared = [spec.name for m in bp.meta_args for spec in m.args]
        for st_ in stages.values():
            declared += st_.scope.declared
        unused = stages[bp.target].scope.unused_build_args(declared)
        if unused:
            out.stream(f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed\n")
        if opts.squash:
            final = squash(self.images, bp, final, work)
        for ref in tags:
            self.images.tag(final, str(ref))
        return final

    def _step(self, job: _Job, instr: ins.Instruction) -> None:
        cancel = job.opts.cancel
        if cancel is not None and cancel.is_set():
            raise Cancelled("the client closed the connection: build cancelled")
        job.step_no += 1
        text = " ".join(instr.original.split("\n")[0].split()) if instr.original else type(instr).__name__.upper()
        job.out.stream(f"Step {job.step_no}/{job.total} : {text}\n")

    def _base_image(self, ref: str, opts: BuildOptions, line: int) -> str:
        if opts.pull and opts.fetch_base is not None:  # --pull: ask the registry even if present
            return opts.fetch_base(ref)
        try:
            return self.images.resolve(ref)
        except (NotFound, InvalidArgument):
            if opts.fetch_base is not None:
                return opts.fetch_base(ref)  # its errors name the registry's refusal
            raise NotFound(f"pull access denied for {ref}, repository does not exist or may require "
                           f"'docker login': no such image in the local store and no registry is "
                           f"reachable (Dockerfile line {line})") from None

    # ------------------------------------------------------------------ dispatch

    def _dispatch(self, job: _Job, cur: _Stage, instr: ins.Instruction) -> None:
        if isinstance(instr, ins.Arg):
            cur.scope.declare(instr)
            if cur.image is not None:
                job.out.stream(f" ---> {_short(cur.image)}\n")
            return
        expanded = expand_instruction(instr, cur.scope.lookup(), job.escape)
        if isinstance(expanded, ins.Env):
            cur.scope.set_env(expanded)
        try:
            if isinstance(expanded, ins.Run):
                self._run_step(job, cur, expanded)
            elif isinstance(expanded, (ins.Copy, ins.Add)):
                self._copy_step(job, cur, expanded)
            else:
                self._metadata(job, cur, expanded)
        except Cancelled:
            raise
        except DockyardError as e:
            if "line " in str(e):
                raise
            raise type(e)(f"{e} (Dockerfile line {instr.line})") from None

    def _cached(self, job: _Job, parent: str | None, keyword: str,
                inputs: dict[str, str]) -> tuple[str, str, str | None]:
        """(key, slot, cached image id or None); prints the cache verdict."""
        opts, out = job.opts, job.out
        p = parent or "scratch"
        key = step_key(p, inputs)
        slot = slot_of(p, keyword)
        if opts.no_cache:
            return key, slot, None
        hit = self.cache.lookup(key, self.images.exists)
        if hit is not None:
            out.stream(" ---> Using cache\n")
            out.stream(f" ---> {_short(hit)}\n")
            return key, slot, hit
        why = self.cache.explain_miss(slot, inputs)
        if why:
            out.stream(f" ---> Cache miss: {keyword}: {why}\n")
        return key, slot, None

    def _metadata(self, job: _Job, cur: _Stage, instr: ins.Instruction, workdir: bool = True) -> None:
        out, work = job.out, job.work
        created_by = cur.cfg.apply(instr, cur.scope.lookup())
        if created_by is None:  # FROM inside a body cannot happen; be explicit anyway
            raise InvalidArgument(f"dockerfile parse error on line {instr.line}: unexpected instruction")
        config = cur.cfg.config
        keyword = type(instr).__name__.upper()
        inputs = {"instruction": created_by, "config": _sha(json.dumps(config, sort_keys=True)),
                  "author": cur.cfg.author}
        key, slot, hit = self._cached(job, cur.image, keyword, inputs)
        if hit is not None:
            cur.image = hit
            return
        new: str | None = None
        if isinstance(instr, ins.Workdir) and cur.image is not None and workdir:
            new = self._workdir_step(cur, config, created_by, work)
        if new is None:
            new = self.images.derive(cur.image, config=config, created_by=created_by)
        self.cache.record(key, slot, inputs, new)
        cur.image = new
        out.stream(f" ---> {_short(new)}\n")

    def _workdir_step(self, cur: _Stage, config: dict[str, Any], created_by: str, work: Path) -> str | None:
        """Create WORKDIR in the image when missing: a layer then, else None (metadata only)."""
        wd = config.get("WorkingDir") or "/"
        if cur.image is not None and self._exists_in(cur.image, wd, work):
            return None  # the usual case: a look at the image's layers, no snapshot needed
        with self._snapshot(cur.image, work) as (key, rootfs):
            target = resolve(rootfs, wd)
            if os.path.lexists(target):
                return None
            os.makedirs(target, 0o755)
            self.images.unmount_rootfs(rootfs)
            return self.images.commit(key, parent_image_id=cur.image, config=config, created_by=created_by,
                                      author=cur.cfg.author, consume=True)

    # ------------------------------------------------------------------ snapshots

    def _links_for(self, key: str, rootfs: Path) -> Links | None:
        """Hard links from the file cache, when ``key`` is an overlay snapshot on its filesystem."""
        snaps = getattr(self.images, "snapshots", None)
        if snaps is None or snaps.apply_mode != "overlay":
            return None
        upper = snaps.writable_dir(key)
        if not self.links.usable_for(upper):
            return None
        return Links(self.links, str(rootfs), str(upper))

    def _launcher(self) -> ForkServer | None:
        """The pre-forked runtime for RUN steps, when the runtime is ours (see forkserver)."""
        if os.path.basename(self.runtime) != "dockyard-runtime" or os.environ.get("DOCKYARD_BUILD_NO_FORKSERVER"):
            return None
        with self._fs_lock:
            if self._forkserver is None:
                self._forkserver = ForkServer()
            return self._forkserver

    def _exists_in(self, image: str, path: str, work: Path) -> bool:
        """Does ``path`` exist in the image (symlinks followed inside it)?"""
        view = Path(tempfile.mkdtemp(prefix="view-", dir=work))
        try:
            mount_all(self.images.image_mounts(image), view)
            try:
                return os.path.lexists(resolve(view, path))
            finally:
                unmount_all(view)
        finally:
            os.rmdir(view)

    def _snapshot(self, image: str | None, work: Path, readonly: bool = False,
                  container: bool = False) -> StepSnapshot:
        """A step's root filesystem; ``container``: a RUN runs on it (it gets an init layer)."""
        return StepSnapshot(self.images, image, work, readonly, init_layer=container)

    # ------------------------------------------------------------------ RUN

    def _run_step(self, job: _Job, cur: _Stage, instr: ins.Run) -> None:
        ctx, opts, out, work = job.ctx, job.opts, job.out, job.work
        config = cur.cfg.config
        shebang = instr.shebang_file()
        script = instr.script()
        if shebang is not None:
            argv = [f"/dev/pipes/{shebang[0]}"]
        elif instr.shell_form:
            argv = list(config.get("Shell") or ["/bin/sh", "-c"]) + [script[0] if script else ""]
        else:
            argv = list(script)
        env = cur.scope.run_env()
        env_list = [f"{k}={v}" for k, v in env.items()]
        network = instr.network or opts.network or "default"
        if network not in ("default", "none", "host", "bridge"):
            raise InvalidArgument(f"dockerfile line {instr.line}: network mode {network!r} is not supported for RUN")
        inputs: dict[str, str] = {
            "instruction": "RUN " + json.dumps(argv),
            "user": config.get("User") or "",
            "workdir": config.get("WorkingDir") or "/",
            "network": "host" if network == "host" else "default",
        }
        if shebang is not None:
            inputs["shebang"] = _sha(shebang[1])
        for i, m in enumerate(instr.mounts):
            inputs[f"mount:{i}"] = m.spec
            if m.type == "bind" and not m.from_:
                rel = ctx.resolve(context_source(m.source or "."))
                if ctx.exists(rel):
                    inputs[f"mount:{i}:content"] = ctx.digest_of(rel)[0]
            elif m.type == "bind" and m.from_:
                inputs[f"mount:{i}:from"] = self._from_image(job, m.from_, instr.line, mount=True) or ""
            elif m.type == "secret":
                sid = m.id or os.path.basename(m.target or "")
                inputs[f"mount:{i}:secret"] = sid
        # one input per variable, so that a miss can name it; proxy settings given only as
        # build args reach the step but not its cache key (docker's rule)
        declared = set(cur.scope.declared)
        for name, value in env.items():
            if name in PROXY_ARGS and name not in cur.scope.variables:
                continue
            inputs[f"{'arg' if name in declared else 'env'}:{name}"] = _sha(value)
        key, slot, hit = self._cached(job, cur.image, "RUN", inputs)
        if hit is not None:
            cur.image = hit
            return
        if cur.image is None:
            raise StepFailed(f"dockerfile line {instr.line}: RUN needs a shell or command in the image; "
                             f"the stage is empty (FROM scratch)")
        cid = secrets.token_hex(32)
        out.stream(f" ---> Running in {cid[:12]}\n")
        created_by = "RUN " + " ".join(argv)
        with ExitStack() as stack:
            snap = stack.enter_context(self._snapshot(cur.image, work, container=True))
            key_snap, rootfs = snap
            bundle = rootfs.parent
            mounts = self._run_mounts(job, instr, stack, shebang)
            spec = RunSpec(cid=cid, argv=tuple(argv), env=tuple(env_list), cwd=config.get("WorkingDir") or "/",
                           user=config.get("User") or "", network=network, mounts=tuple(mounts),
                           extra_hosts=opts.extra_hosts)
            cancel = opts.cancel
            code = run_container(self.runtime, self.state_dir, bundle, spec, out.stream,
                                 cancelled=cancel.is_set if cancel is not None else None,
                                 launcher=self._launcher(), error_output=out.stream_err)
            out.stream(f"Removing intermediate container {cid[:12]}\n")
            if code != 0:
                shown = " ".join(argv)  # docker joins the argv with blanks, exec form included
                raise StepFailed(f"The command '{shown}' returned a non-zero code: {code} "
                                 f"(Dockerfile line {instr.line})")
            self.images.unmount_rootfs(rootfs)
            new = self.images.commit(key_snap, parent_image_id=cur.image, config=config, created_by=created_by,
                                     author=cur.cfg.author, consume=True)
        self.cache.record(key, slot, inputs, new)
        cur.image = new
        out.stream(f" ---> {_short(new)}\n")

    def _run_mounts(self, job: _Job, instr: ins.Run, stack: ExitStack,
                    shebang: tuple[str, str] | None) -> list[RunMount]:
        work = job.work
        private = Path(tempfile.mkdtemp(prefix="mounts-", dir=work))
        stack.callback(shutil.rmtree, private, True)

        def source_root(ref: str) -> Path:
            image = self._from_image(job, ref, instr.line, mount=True)
            return stack.enter_context(self._snapshot(image, work, readonly=True))[1]

        return prepare_mounts(instr, private=private, cache=self.cache, secrets=job.opts.secrets,
                              context_root=job.ctx.host_root, source_root=source_root, shebang=shebang)

    # ------------------------------------------------------------------ COPY / ADD

    def _from_image(self, job: _Job, ref: str, line: int, mount: bool = False) -> str | None:
        bp, stages = job.plan, job.stages
        idx = bp.mount_ref(ref) if mount else bp.stage_ref(ref)
        if idx is not None:
            st = stages.get(idx)
            if st is None:
                raise StepFailed(f"dockerfile line {line}: stage {ref} is not built")
            return st.image
        try:
            return self.images.resolve(ref)
        except (NotFound, InvalidArgument):
            raise NotFound(f"dockerfile line {line}: pull access denied for {ref}: no such image "
                           f"in the local store") from None

    def _copy_step(self, job: _Job, cur: _Stage, instr: ins.Copy | ins.Add) -> None:
        ctx, out, work = job.ctx, job.out, job.work
        kw = "COPY" if isinstance(instr, ins.Copy) else "ADD"
        config = cur.cfg.config
        dest = copy_dest(config.get("WorkingDir") or "/", instr.dest)
        chmod: int | str | None = None
        if instr.chmod:
            try:
                parsed = parse_chmod(instr.chmod)
            except InvalidArgument as e:
                raise InvalidArgument(f"dockerfile parse error on line {instr.line}: {e}") from None
            chmod = parsed if parsed is not None else instr.chmod
        inputs: dict[str, str] = {
            "instruction": f"{kw} {json.dumps(list(instr.sources))} {dest}",
            "chown": instr.chown or "", "chmod": instr.chmod or "",
        }
        if instr.parents:
            raise StepFailed(f"dockerfile line {instr.line}: COPY --parents is not supported by this builder")
        if instr.exclude:
            inputs["exclude"] = json.dumps(list(instr.exclude))
        with ExitStack() as stack:
            from_ctx = not (isinstance(instr, ins.Copy) and instr.from_)
            host_sources: list[Path] = []
            rels: list[str] = []
            names: list[str] = []
            skip: Callable[[str], bool] | None = None
            excl: PatternMatcher | None = None
            for src in instr.sources:
                if source_kind(src) != "local" and isinstance(instr, ins.Add):
                    raise StepFailed(f"ADD failed: cannot download {src}: this daemon has no network access "
                                     f"for ADD of URLs (Dockerfile line {instr.line})")
            if not from_ctx:
                assert isinstance(instr, ins.Copy) and instr.from_
                src_image = self._from_image(job, instr.from_, instr.line)
                inputs["from"] = src_image or "scratch"
                root = stack.enter_context(self._snapshot(src_image, work, readonly=True))[1]
                for src in instr.sources:
                    for h, n in self._match_host(kw, root, src, instr.line):
                        host_sources.append(h)
                        names.append(n)
                for h in host_sources:
                    inputs[f"src:{os.path.relpath(h, root)}"] = "from " + (src_image or "scratch")
            else:
                for src in instr.sources:
                    for r, n in self._match_ctx(kw, ctx, src, instr.line):
                        rels.append(r)
                        names.append(n)
                excl = PatternMatcher(instr.exclude) if instr.exclude else None
                for rel in rels:
                    for r, d in ctx.digest_of(rel)[1].items():
                        if excl is None or not excl.matches(_below(r, rel)):
                            inputs[f"file:{r}"] = d
            heredoc_paths: list[Path] = []
            if instr.heredocs:
                hd = Path(tempfile.mkdtemp(prefix="heredoc-", dir=work))
                stack.callback(shutil.rmtree, hd, True)
                for h in instr.heredocs:
                    p = hd / os.path.basename(h.name)
                    p.write_text(h.content if h.expand else h.chomped)
                    p.chmod(0o644)
                    heredoc_paths.append(p)
                    names.append(p.name)
                    inputs[f"heredoc:{h.name}"] = _sha(p.read_text())
            count = len(host_sources) + len(rels) + len(heredoc_paths)
            if count > 1 and not dest.endswith("/"):
                raise StepFailed(f"When using {kw} with more than one source file, the destination must be "
                                 f"a directory and end with a / (Dockerfile line {instr.line})")
            key, slot, hit = self._cached(job, cur.image, kw, inputs)
            if hit is not None:
                cur.image = hit
                return
            def skip_rel(r: str) -> bool:
                if ctx.excluded(r):  # an excluded dir with re-included files inside is entered
                    return not ctx.entered_though_excluded(r)
                return excl is not None and any(excl.matches(_below(r, top)) for top in rels)

            direct = bool(rels) and isinstance(instr, ins.Copy)  # straight from the context
            if rels and not direct:  # ADD looks into files (archives): give it real ones
                hroot = ctx.host_root()
                host_sources += [hroot / r if r else hroot for r in rels]  # names: same order

                def skip(p: str) -> bool:
                    return skip_rel(os.path.relpath(p, hroot))
            sources = host_sources + heredoc_paths
            force_dir = count > 1
            key_snap, rootfs = stack.enter_context(self._snapshot(cur.image, work))
            owner = resolve_owner(rootfs, instr.chown) if instr.chown else (0, 0)
            unpack = isinstance(instr, ins.Add) and instr.unpack is not False
            plain: list[Path] = []
            plain_names: list[str] = []
            for s in sources:
                if unpack and s not in heredoc_paths and s.is_file() and not s.is_symlink() and _is_archive(s):
                    self._untar(s, rootfs, dest, instr.line)
                else:
                    plain.append(s)
                    plain_names.append(names[sources.index(s)] if not direct else s.name)
            try:
                if plain:
                    copy_into(rootfs, plain, dest, owner=owner, chmod=chmod, skip=skip, force_dir=force_dir,
                              names=plain_names)
                if direct:
                    copy_from_context(ctx, rels, rootfs, dest, owner=owner, chmod=chmod, skip_rel=skip_rel,
                                      force_dir=force_dir, names=names[:len(rels)],
                                      links=self._links_for(key_snap, rootfs))
            except OSError as e:
                raise StepFailed(f"{kw} failed: {e.strerror}: {dest} (Dockerfile line {instr.line})") from None
            self.images.unmount_rootfs(rootfs)
            digest = _sha(json.dumps(inputs, sort_keys=True))
            one_dir = count == 1 and ((rels and ctx.kind(rels[0]) == "dir") or (sources and sources[0].is_dir()))
            created_by = f"{kw} {'dir' if one_dir else 'file'}:{digest} in {dest}"
            new = self.images.commit(key_snap, parent_image_id=cur.image, config=config, created_by=created_by,
                                     author=cur.cfg.author, consume=True)
        self.cache.record(key, slot, inputs, new)
        cur.image = new
        out.stream(f" ---> {_short(new)}\n")

    def _match_ctx(self, kw: str, ctx: BuildContext, src: str, line: int) -> list[tuple[str, str]]:
        """(resolved path in the context, name as written) of each source ``src`` names."""
        rel = context_source(src)
        if _GLOB.search(rel):
            found = ctx.glob(rel)
            if not found:
                raise StepFailed(f"{kw} failed: no source files were specified (Dockerfile line {line})")
            return [(f, os.path.basename(f)) for f in found]
        rel = "" if rel == "." else rel
        r = ctx.resolve(rel)
        if not ctx.exists(r) or ctx.excluded(rel):
            raise StepFailed(f"{kw} failed: file not found in build context or excluded by .dockerignore: "
                             f"stat {src}: file does not exist (Dockerfile line {line})")
        return [(r, os.path.basename(rel) or os.path.basename(r))]

    def _match_host(self, kw: str, root: Path, src: str, line: int) -> list[tuple[Path, str]]:
        rel = context_source(src)
        if _GLOB.search(rel):
            parts = rel.split("/")
            found: list[Path] = []

            def go(d: Path, depth: int) -> None:
                if depth == len(parts):
                    found.append(d)
                    return
                if not d.is_dir() or d.is_symlink():
                    return
                for name in sorted(os.listdir(d)):
                    if fnmatch.fnmatchcase(name, parts[depth]):
                        go(d / name, depth + 1)

            go(root, 0)
            if not found:
                raise StepFailed(f"{kw} failed: no source files were specified (Dockerfile line {line})")
            return [(f, f.name) for f in found]
        host = resolve(root, rel)
        if not os.path.lexists(host):
            raise StepFailed(f"{kw} failed: file not found in source image: stat {src}: file does not exist "
                             f"(Dockerfile line {line})")
        return [(host, os.path.basename(rel) or host.name)]

    def _untar(self, archive: Path, rootfs: Path, dest: str, line: int) -> None:
        from dockyard.diff.apply import apply_layer

        target = resolve(rootfs, dest)
        os.makedirs(target, 0o755, exist_ok=True)
        try:
            with open(archive, "rb") as f:
                apply_layer(f, target, "naive")
        except InvalidArgument as e:
            raise StepFailed(f"ADD failed: {archive.name}: {e} (Dockerfile line {line})") from None


class _Output:
    def __init__(self, emit: Emit, quiet: bool) -> None:
        self.emit = emit
        self.quiet = quiet

    def stream(self, text: str) -> None:
        if not self.quiet:
            self.emit({"stream": text})

    def stream_err(self, text: str) -> None:
        """A RUN command's stderr: dockerd's classic builder sends it in bright red (SGR 91 ...
        SGR 0 around each piece it writes); clients print it as it comes (docker-py's suite
        checks the exact wrapping)."""
        self.stream(f"\x1b[91m{text}\x1b[0m")


def _below(rel: str, top: str) -> str:
    """``rel`` relative to the COPY source ``top`` (what --exclude patterns match against)."""
    if not top:
        return rel
    return rel[len(top) + 1:] if rel.startswith(top + "/") else os.path.basename(rel)


def _error(emit: Emit, message: str) -> None:
    emit({"errorDetail": {"message": message}, "error": message})


def _sweep(work: Path, images: Any) -> None:
    """Remove a build's temp dir, unmounting whatever is still mounted below it first."""
    try:
        with open("/proc/self/mountinfo") as f:
            points = [ln.split()[4] for ln in f]
    except OSError:
        points = []
    prefix = str(work) + "/"
    for p in sorted((p for p in points if p.startswith(prefix)), reverse=True):
        unmount_quiet(images, Path(p))
    shutil.rmtree(work, ignore_errors=True)
