"""The Docker SDK client the test_dockerpy_* modules drive a private dockyardd with.

``sdk_client(engine, version)`` yields a ``docker.APIClient`` that remembers what the test made
(``made`` containers, ``nets`` networks, ``images_made`` images) and removes it afterwards, even
when the test fails; ``run(client, cmd, **kw)`` creates and starts a busybox container it records.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def sdk_client(engine: Any, version: str) -> Iterator[Any]:
    import docker

    c = docker.APIClient(base_url=engine.host, version=version, timeout=60)
    c.made, c.nets, c.images_made = [], [], []  # type: ignore[attr-defined]
    try:
        yield c
    finally:
        for remove, items in ((lambda x: c.remove_container(x, force=True, v=True), c.made),
                              (c.remove_network, c.nets),
                              (lambda x: c.remove_image(x, force=True), c.images_made)):
            for x in items:
                with contextlib.suppress(docker.errors.APIError):
                    remove(x)
        c.close()


def run(client: Any, cmd: list[str] | str, **kw: Any) -> str:
    cid: str = client.create_container("busybox", cmd, **kw)["Id"]
    client.made.append(cid)
    client.start(cid)
    return cid
