"""The volume package's values: a volume record and a resolved mount plan (frozen, JSON round-trip).

``Volume`` is what ``docker volume inspect`` shows (domain names, converted to the Engine API's
PascalCase only in ``api/volumes.py``). ``MountPlan`` is one resolved container mount: what the
``-v``/``--mount``/``--tmpfs``/image ``VOLUME``/``--volumes-from`` inputs turn into
(:mod:`dockyard.volumes.spec`) before :mod:`dockyard.volumes.oci` makes OCI mount entries of it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Any

from dockyard.errors import InvalidArgument

DEFAULT_DRIVER = "local"
ANONYMOUS_LABEL = "com.docker.volume.anonymous"
DATA_DIR = "_data"

# docker's RestrictedNamePattern: at least two characters, the first alphanumeric
_NAME_CHARS = "[a-zA-Z0-9][a-zA-Z0-9_.-]"
_NAME_RE = re.compile(f"^{_NAME_CHARS}+$")

TYPE_BIND = "bind"
TYPE_VOLUME = "volume"
TYPE_TMPFS = "tmpfs"


def check_name(name: str) -> None:
    """A local volume's name becomes a folder name: refuse anything that could escape the root."""
    if not _NAME_RE.match(name):
        raise InvalidArgument(
            f'create {name}: "{name}" includes invalid characters for a local volume name, only '
            f'"{_NAME_CHARS}" are allowed. If you intended to pass a host directory, use absolute path')


@dataclass(frozen=True)
class Volume:
    name: str
    driver: str
    mountpoint: str  # <root>/<name>/_data
    created_at: str  # RFC 3339, seconds (as docker)
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)  # driver_opts as given (type, o, device)
    scope: str = "local"

    @property
    def anonymous(self) -> bool:
        return ANONYMOUS_LABEL in self.labels

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Volume:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass(frozen=True)
class Usage:
    """``UsageData`` of ``docker system df -v``: bytes on disk (-1 unknown) and containers using it."""

    size: int
    ref_count: int


@dataclass(frozen=True)
class MountPlan:
    """One container mount, resolved.

    ``source``: the host path for ``bind``; the volume name for ``volume`` ("" until an
    anonymous volume is created: :func:`dockyard.volumes.spec.with_volume`); "" for tmpfs.
    ``host_path``: what gets mounted (the bind source, or the volume's path from
    ``VolumeService.acquire``); set by the engine right before start.
    """

    type: str  # bind | volume | tmpfs
    destination: str
    source: str = ""
    read_only: bool = False
    mode: str = ""  # the raw mode of a -v spec ("ro,z"), shown by inspect as "Mode"
    propagation: str = ""  # bind: rprivate by default; volume/tmpfs: ""
    copy_data: bool = True  # volume: copy the image's content into an empty volume
    driver: str = ""  # volume
    driver_opts: dict[str, str] = field(default_factory=dict)  # volume created by --mount
    labels: dict[str, str] = field(default_factory=dict)  # volume created by --mount
    subpath: str = ""  # volume-subpath
    non_recursive: bool = False  # bind-nonrecursive
    create_source: bool = False  # -v /host/dir:...: a missing host dir is created (--mount refuses)
    tmpfs_data: str = ""  # size=..,mode=.. (tmpfs)
    origin: str = ""  # binds | mounts | tmpfs | image | volumes-from
    host_path: str = ""

    @property
    def anonymous(self) -> bool:
        return self.type == TYPE_VOLUME and not self.source

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> MountPlan:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})
