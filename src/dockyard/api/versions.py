"""Response shapes that depend on the API version a client asked for (``/v1.xx/`` prefix).

Routers build the current (1.50) shape with ``api.wire`` and pass it through one function here
with ``common.api_version(request)``; each edit names the version where dockerd changed it
(the Engine API's version history). Only what clients in use read is kept: docker-compose 1.29
takes the server's newest (1.50; ``COMPOSE_API_VERSION`` overrides), docker-py 7 negotiates up to
1.45 (or whatever ``version=`` says), the docker CLI 28 negotiates 1.50 or honours ``DOCKER_API_VERSION``.

| field | versions that have it |
| --- | --- |
| ``VirtualSize`` in image list / inspect / ``system df`` images | < 1.44 (equal to ``Size``) |
| ``Container``, ``ContainerConfig`` in image inspect | < 1.45, and for docker-compose 1.x at any version |
| ``Config.MacAddress`` in container inspect | < 1.44 (moved to the endpoint settings) |
| ``NetworkSettings.Networks.*.Aliases`` with the short id | < 1.45 (``DNSNames`` after) |

docker-compose 1.x asks for the server's newest version (docker-py's ``version=None`` means
"auto") and then reads ``ContainerConfig.Volumes`` when it recreates a container (``up`` after a
config change, ``--force-recreate``): against dockerd 25+ that is its well-known ``KeyError:
'ContainerConfig'``. It still works against dockerd 20.10 (API 1.41), so for a client that says
it is compose 1.x (its User-Agent, ``docker-compose/1.29.2 docker-py/...``) image inspect keeps
the legacy fields whatever the version: see ``legacy_image_fields``.
"""

from __future__ import annotations

from typing import Any

Version = tuple[int, int]


def image_summary(d: dict[str, Any], v: Version) -> dict[str, Any]:
    if v >= (1, 44):
        d.pop("VirtualSize", None)
    else:
        d["VirtualSize"] = d.get("Size", 0)
    return d


def legacy_image_fields(user_agent: str) -> bool:
    """Whether a client needs ``ContainerConfig`` in image inspect at every version (compose 1.x)."""
    return user_agent.startswith("docker-compose/1.")


def image_inspect(d: dict[str, Any], v: Version, legacy: bool = False) -> dict[str, Any]:
    image_summary(d, v)
    if v < (1, 45) or legacy:
        d.setdefault("Container", "")
        # dockerd filled it with the building container's config; ours builds from the image's own
        # config, so the image's config is the honest answer (Volumes is what compose reads)
        d.setdefault("ContainerConfig", dict(d.get("Config") or {}))
    else:
        d.pop("Container", None)
        d.pop("ContainerConfig", None)
    cfg = d.get("Config")
    if v < (1, 50) and isinstance(cfg, dict):
        # before 1.50 the image's Config was a container config without omitempty: OnBuild was
        # always there (null when empty); docker-py's suite reads info['Config']['OnBuild']
        cfg.setdefault("OnBuild", None)
    return d


def container_inspect(d: dict[str, Any], v: Version) -> dict[str, Any]:
    if v < (1, 44):
        cfg = d.get("Config")
        if isinstance(cfg, dict) and "MacAddress" not in cfg:
            cfg["MacAddress"] = (d.get("NetworkSettings") or {}).get("MacAddress", "")
    if v < (1, 45):
        # dockerd added the short id as an alias on user-defined networks (where DNS exists)
        short = str(d.get("Id", ""))[:12]
        for name, ep in ((d.get("NetworkSettings") or {}).get("Networks") or {}).items():
            if name in ("bridge", "host", "none", "default") or not isinstance(ep, dict):
                continue
            aliases = list(ep.get("Aliases") or [])
            if short and short not in aliases:
                ep["Aliases"] = [*aliases, short]
    return d


def system_df(d: dict[str, Any], v: Version) -> dict[str, Any]:
    for img in d.get("Images") or []:
        image_summary(img, v)
    return d
