"""Where everything lives under the registry root (cf. distribution's ``paths.go``).

::

    <root>/
    ├── blobs/<alg>/<hex>                     content: layers, configs AND manifest bytes;
    │                                         written only by os.replace of a verified file
    ├── repositories/<name>/                  <name> may contain '/': nested directories
    │   ├── _layers/<alg>/<hex>/link          "<alg>:<hex>": blob is part of this repository
    │   ├── _manifests/
    │   │   ├── revisions/<alg>/<hex>/link    a manifest pushed to this repository
    │   │   ├── revisions/<alg>/<hex>/mediatype   Content-Type it was pushed with
    │   │   └── tags/<tag>/current/link       "<alg>:<hex>" of the tagged manifest
    │   ├── _referrers/<alg>/<subject hex>/<alg>-<hex>   JSON descriptor of a manifest
    │   │                                     whose ``subject`` is that digest
    │   └── _uploads/<uuid>/
    │       ├── data                          bytes received so far (appended in order)
    │       └── startedat                     RFC 3339 time the session began
    └── (nothing else; temp files are ".tmp-*" next to their final name)

A blob is visible only once ``blobs/<alg>/<hex>`` exists, and that file appears atomically after
its digest and size were verified. A repository sees a blob only through its ``_layers`` (or
``_manifests/revisions``) link, so deleting a link hides the blob from that repository; the
bytes go away only in ``gc``. Directories whose name starts with ``_`` can't be repository
components (the name grammar forbids a leading ``_``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dockyard.oci.digest import Digest


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def blobs(self) -> Path:
        return self.root / "blobs"

    @property
    def repositories(self) -> Path:
        return self.root / "repositories"

    def blob(self, d: Digest) -> Path:
        return self.blobs / d.algorithm / d.hex

    def repo(self, name: str) -> Path:
        return self.repositories / name

    def layer_link(self, name: str, d: Digest) -> Path:
        return self.repo(name) / "_layers" / d.algorithm / d.hex / "link"

    def revisions(self, name: str) -> Path:
        return self.repo(name) / "_manifests" / "revisions"

    def revision_dir(self, name: str, d: Digest) -> Path:
        return self.revisions(name) / d.algorithm / d.hex

    def tags(self, name: str) -> Path:
        return self.repo(name) / "_manifests" / "tags"

    def tag_link(self, name: str, tag: str) -> Path:
        return self.tags(name) / tag / "current" / "link"

    def referrers(self, name: str, subject: Digest) -> Path:
        return self.repo(name) / "_referrers" / subject.algorithm / subject.hex

    def uploads(self, name: str) -> Path:
        return self.repo(name) / "_uploads"

    def upload(self, name: str, uuid: str) -> Path:
        return self.uploads(name) / uuid

    def ensure(self) -> None:
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.repositories.mkdir(parents=True, exist_ok=True)
