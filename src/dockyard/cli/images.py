"""Image verbs: images, pull, push, build, import, rmi, tag, history, load, save, prune.

Pull/push/load progress is docker's JSON-message display (``progress.display``): one line per
layer redrawn in place on a terminal, plain status lines otherwise.
"""

from __future__ import annotations

import sys

from dockyard.cli.common import (
    Globals,
    UsageError,
    confirm,
    daemon_error,
    err,
    filters,
    human_size,
    out,
    parse_iso,
    short_id,
    since,
)
from dockyard.cli.containers import help_requested, need
from dockyard.cli.flags import parse

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TextIO


def _auth_header(ref: str) -> dict[str, str]:
    from dockyard.distribution.auth import registry_auth_for
    return {"X-Registry-Auth": registry_auth_for(ref)}


def _split_ref(ref: str) -> tuple[str, str, bool]:
    """(name, tag-or-digest, whether the tag was implied)."""
    if "@" in ref:
        name, digest = ref.split("@", 1)
        return name, digest, False
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = ref.rsplit(":", 1)
        return name, tag, False
    return ref, "latest", True


def _canonical(ref: str) -> str:
    from dockyard.oci import reference
    return str(reference.parse(ref))


def pull_image(g: Globals, ref: str, *, quiet: bool = False, all_tags: bool = False,
               stream: TextIO | None = None, echo_tag: bool = True) -> int:
    from dockyard import errors
    from dockyard.cli.progress import display
    stream = stream or sys.stdout
    name, tag, implied = _split_ref(ref)
    if implied and not all_tags and not quiet and echo_tag:
        stream.write("Using default tag: latest\n")
    try:
        resp = g.client.request("POST", "/images/create",
                                {"fromImage": name, "tag": None if all_tags else tag},
                                headers=_auth_header(ref))
    except errors.DockyardError as e:
        if not echo_tag:  # inside run/create: their caller prints the error
            raise
        daemon_error(e)
        return 1
    rc = display(resp, stream, quiet=quiet)
    if rc == 0:
        try:
            stream.write(_canonical(ref if not implied else f"{name}:latest") + "\n")
        except Exception:  # noqa: BLE001 - an odd reference only loses the echo
            stream.write(ref + "\n")
    return rc


def pull(g: Globals, argv: list[str]) -> int:
    o, args = parse(argv, "a|all-tags q|quiet platform= disable-content-trust=")
    help_requested(o)
    need(args, "pull", exactly=1)
    return pull_image(g, args[0], quiet=o["quiet"], all_tags=o["all_tags"])


def push(g: Globals, argv: list[str]) -> int:
    from dockyard.cli.progress import display
    o, args = parse(argv, "a|all-tags q|quiet platform= disable-content-trust=")
    help_requested(o)
    need(args, "push", exactly=1)
    name, tag, implied = _split_ref(args[0])
    if implied and not o["all_tags"] and not o["quiet"]:
        out(f"Using default tag: {tag}")
    resp = g.client.request("POST", f"/images/{name}/push", {"tag": None if o["all_tags"] else tag},
                            headers=_auth_header(args[0]))
    rc = display(resp, sys.stdout, quiet=o["quiet"])
    if rc == 0 and o["quiet"]:  # docker push -q prints the full reference it pushed
        out(_canonical(name if o["all_tags"] else f"{name}:{tag}"))
    return rc


IMAGES_DEFAULT = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
IMAGES_HEADERS = {"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "Digest": "DIGEST",
                  "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
                  "Containers": "CONTAINERS", "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE",
                  "VirtualSize": "VIRTUAL SIZE"}


class ImageRow:
    """What ``{{.Field}}`` sees for one ``images`` row (docker's imageContext)."""

    def __init__(self, img: dict[str, Any], repo: str, tag: str, digest: str, trunc: bool) -> None:
        self.i, self.Repository, self.Tag, self.Digest, self.trunc = img, repo, tag, digest, trunc

    @property
    def ID(self) -> str:
        return short_id(self.i["Id"]) if self.trunc else self.i["Id"]

    @property
    def CreatedSince(self) -> str:
        c = self.i.get("Created") or 0
        return since(c) if c > 0 else "N/A"

    @property
    def CreatedAt(self) -> str:
        import time
        return time.strftime("%Y-%m-%d %H:%M:%S %z %Z", time.localtime(self.i.get("Created") or 0))

    @property
    def Size(self) -> str:
        return human_size(self.i.get("Size") or 0, 3)

    @property
    def VirtualSize(self) -> str:
        return human_size(self.i.get("Size") or 0)

    @property
    def Containers(self) -> str:
        n = self.i.get("Containers", -1)
        return "N/A" if n is None or n < 0 else str(n)

    @property
    def SharedSize(self) -> str:
        n = self.i.get("SharedSize", -1)
        return "N/A" if n is None or n < 0 else human_size(n, 3)

    @property
    def UniqueSize(self) -> str:
        n = self.i.get("SharedSize", -1)
        return "N/A" if n is None or n < 0 else human_size((self.i.get("Size") or 0) - n, 3)

    def as_dict(self) -> dict[str, Any]:
        keys = ["Containers", "CreatedAt", "CreatedSince", "Digest", "ID", "Repository", "SharedSize",
                "Size", "Tag", "UniqueSize", "VirtualSize"]
        return {k: getattr(self, k) for k in keys}


def _image_rows(images: list[dict[str, Any]], trunc: bool, digests: bool) -> list[ImageRow]:
    rows = []
    for img in images:
        tags = img.get("RepoTags") or []
        dig = {d.split("@")[0]: d.split("@", 1)[1] for d in img.get("RepoDigests") or [] if "@" in d}
        if not tags:
            if dig:
                for repo, d in dig.items():
                    rows.append(ImageRow(img, repo, "<none>", d, trunc))
            else:
                rows.append(ImageRow(img, "<none>", "<none>", "<none>", trunc))
            continue
        for t in tags:
            repo, _, tag = t.rpartition(":")
            rows.append(ImageRow(img, repo, tag, dig.get(repo, "<none>"), trunc))
    return rows


def images(g: Globals, argv: list[str]) -> int:
    from dockyard.cli.template import render_rows
    o, args = parse(argv, "a|all q|quiet no-trunc digests f|filter* format= tree")
    help_requested(o)
    if len(args) > 1:
        raise UsageError("'dockyard images' requires at most 1 argument")
    flt = filters(o["filter"]) or {}
    if args:
        flt["reference"] = [args[0]]
    data = g.get_json("/images/json", {"all": o["all"] or None, "filters": flt or None})
    rows = _image_rows(data, not o["no_trunc"], o["digests"])
    if o["quiet"] and not o["format"]:
        seen: list[str] = []
        for r in rows:
            if r.ID not in seen:
                seen.append(r.ID)
        for s in seen:
            out(s)
        return 0
    default = IMAGES_DEFAULT
    if o["digests"]:
        default = default.replace("{{.Tag}}\t", "{{.Tag}}\t{{.Digest}}\t")
    sys.stdout.write(render_rows(o["format"], rows, default, IMAGES_HEADERS))
    return 0


def image_inspect(g: Globals, argv: list[str]) -> int:
    from dockyard.cli.containers import inspect
    return inspect(g, argv, "image")


def import_(g: Globals, argv: list[str]) -> int:
    o, args = parse(argv, "c|change* m|message= platform=")
    help_requested(o)
    if not 1 <= len(args) <= 2:
        raise UsageError("'dockyard import' requires at least 1 and at most 2 arguments")
    query = {"fromSrc": "-", "repo": args[1] if len(args) > 1 else None, "changes": o["change"] or None,
             "message": o["message"] or None}
    if args[0] == "-":
        resp = g.client.request("POST", "/images/create", query, body=sys.stdin.buffer)
    else:
        try:
            f = open(args[0], "rb")  # noqa: SIM115 - closed below
        except OSError as e:
            raise UsageError(f"open {args[0]}: {e.strerror.lower()}") from None
        with f:
            resp = g.client.request("POST", "/images/create", query, body=f)
    import json
    last, rc = "", 0
    for line in resp.read().splitlines():
        if line.strip():
            msg = json.loads(line)
            if msg.get("error"):
                err(msg["error"])
                rc = 1
            last = msg.get("status", last)
    if last:
        out(last)
    return rc


def rmi(g: Globals, argv: list[str]) -> int:
    from dockyard import errors
    o, args = parse(argv, "f|force no-prune")
    help_requested(o)
    need(args, "rmi")
    rc = 0
    for r in args:
        try:
            for item in g.client.json("DELETE", f"/images/{r}", {"force": o["force"],
                                                                  "noprune": o["no_prune"]}) or []:
                for k, v in item.items():
                    out(f"{k}: {v}")
        except errors.DockyardError as e:
            daemon_error(e)
            rc = 1
    return rc


def tag(g: Globals, argv: list[str]) -> int:
    o, args = parse(argv, "")
    help_requested(o)
    need(args, "tag", exactly=2)
    name, t, _ = _split_ref(args[1])
    g.client.request("POST", f"/images/{args[0]}/tag", {"repo": name, "tag": t}).read()
    return 0


HISTORY_DEFAULT = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
HISTORY_HEADERS = {"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
                   "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"}


class HistoryRow:
    def __init__(self, h: dict[str, Any], trunc: bool, human: bool) -> None:
        self.h, self.trunc, self.human = h, trunc, human

    @property
    def ID(self) -> str:
        i = self.h.get("Id") or "<missing>"
        return short_id(i) if self.trunc and i.startswith("sha256:") else i

    @property
    def CreatedSince(self) -> str:
        return since(self.h.get("Created") or 0) if self.human else self.CreatedAt

    @property
    def CreatedAt(self) -> str:
        import time
        return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.h.get("Created") or 0))

    @property
    def CreatedBy(self) -> str:
        by = (self.h.get("CreatedBy") or "").replace("\t", " ")
        if self.trunc and len(by) > 45:
            by = by[:44] + "…"
        return by

    @property
    def Size(self) -> str:
        return human_size(self.h.get("Size") or 0, 3) if self.human else str(self.h.get("Size") or 0)

    @property
    def Comment(self) -> str:
        return self.h.get("Comment") or ""

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("Comment", "CreatedAt", "CreatedBy", "CreatedSince", "ID", "Size")}


def history(g: Globals, argv: list[str]) -> int:
    from dockyard.cli.template import render_rows
    o, args = parse(argv, "H|human= no-trunc q|quiet format= platform=")
    help_requested(o)
    need(args, "history", exactly=1)
    data = g.client.json("GET", f"/images/{args[0]}/history") or []
    rows = [HistoryRow(h, not o["no_trunc"], o["human"] != "false") for h in data]
    fmt = "{{.ID}}" if o["quiet"] and not o["format"] else o["format"]
    sys.stdout.write(render_rows(fmt, rows, HISTORY_DEFAULT, HISTORY_HEADERS))
    return 0


def save(g: Globals, argv: list[str]) -> int:
    from dockyard.cli.containers import _to_file_or_stdout
    o, args = parse(argv, "o|output= platform=")
    help_requested(o)
    need(args, "save")
    resp = g.client.request("GET", "/images/get", {"names": args})
    return _to_file_or_stdout(resp, o["output"], "save")


def load(g: Globals, argv: list[str]) -> int:
    from dockyard.cli.progress import display
    o, args = parse(argv, "i|input= q|quiet platform=")
    help_requested(o)
    if args:
        raise UsageError("'dockyard load' accepts no arguments")
    if o["input"]:
        try:
            f = open(o["input"], "rb")  # noqa: SIM115 - closed below
        except OSError as e:
            raise UsageError(f"open {o['input']}: {e.strerror.lower()}") from None
    else:
        if sys.stdin.isatty():
            raise UsageError("requested load from stdin, but stdin is empty")
        f = sys.stdin.buffer
    with f:
        resp = g.client.request("POST", "/images/load", {"quiet": o["quiet"]}, body=f)
        return display(resp, sys.stdout, quiet=False)


def build(g: Globals, argv: list[str]) -> int:
    from dockyard.cli.build import build as run_build
    o, args = parse(argv, "t|tag* f|file= no-cache q|quiet build-arg* target= label* pull rm= force-rm "
                          "network= platform= iidfile= progress= cache-from* add-host* shm-size= "
                          "m|memory= squash")
    help_requested(o)
    need(args, "build", exactly=1)
    return run_build(g, o, args[0])


def prune(g: Globals, argv: list[str]) -> int:
    o, args = parse(argv, "a|all f|force filter*")
    help_requested(o)
    warn = ("WARNING! This will remove all images without at least one container associated to them."
            if o["all"] else "WARNING! This will remove all dangling images.")
    if not confirm(warn + "\nAre you sure you want to continue?", o["force"]):
        return 0
    flt = filters(o["filter"]) or {}
    flt["dangling"] = ["false" if o["all"] else "true"]
    res = g.client.json("POST", "/images/prune", {"filters": flt}) or {}
    deleted = res.get("ImagesDeleted") or []
    if deleted:
        out("Deleted Images:")
        for d in deleted:
            for k, v in d.items():
                out(f"{k.lower()}: {v}")
        out("")
    out(f"Total reclaimed space: {human_size(res.get('SpaceReclaimed') or 0)}")
    return 0


_ = (parse_iso, daemon_error)
