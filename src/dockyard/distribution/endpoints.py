"""Which base URLs serve a registry host, in the order they are tried (dockerd's rules).

* ``docker.io``: for pulls, each ``--registry-mirror`` first (as given; no scheme -> https),
  then ``https://registry-1.docker.io``; pushes and logins never go to a mirror. A mirror
  gets the credentials given for docker.io (dockerd passes the one AuthConfig of the pull to
  every endpoint it tries, mirrors included).
* a host in ``--insecure-registry`` (``host[:port]`` or a CIDR) or a loopback host
  (127.0.0.0/8, ::1, ``localhost``: insecure by default, as in dockerd): ``https`` without
  certificate verification, then plain ``http``;
* any other host: ``https`` only, verified.

An https endpoint carries the ``certs.d/<host:port>`` directory found for its host (CA and
client certificates, dockerd's ``/etc/docker/certs.d`` layout: see ``certs.py``).

A caller moves to the next endpoint when one cannot be reached (connection refused, TLS
failure) or, for mirrors, when it does not have the content (404) or refuses the
credentials (401/403: dockerd falls back on any registry error from a mirror); other errors
are final.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from dockyard.distribution.certs import CERTS_DIRS, certs_dir_for

DOCKER_HUB = "docker.io"
DOCKER_HUB_URL = "https://registry-1.docker.io"


@dataclass(frozen=True, slots=True)
class Endpoint:
    url: str  # scheme://host[:port], no trailing slash
    tls_verify: bool = True
    mirror: bool = False
    certs_dir: str = ""  # <certs.d>/<host:port> with its CA / client certs, if any (certs.py)

    @property
    def secure(self) -> bool:
        return self.url.startswith("https://")


def _is_loopback(host: str) -> bool:
    h = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.startswith("[") else host
    h = h.strip("[]")
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def is_insecure(host: str, insecure_registries: tuple[str, ...] = ()) -> bool:
    """May ``host`` be reached over http / unverified TLS?"""
    if _is_loopback(host):
        return True
    bare = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    for entry in insecure_registries:
        e = entry.strip()
        for prefix in ("http://", "https://"):
            if e.startswith(prefix):
                e = e[len(prefix):]
        e = e.rstrip("/")
        if e in (host, bare):
            return True
        if "/" in e:
            try:
                net = ipaddress.ip_network(e, strict=False)
                if ipaddress.ip_address(bare.strip("[]")) in net:
                    return True
            except ValueError:
                continue
    return False


def endpoints_for(
    host: str,
    *,
    mirrors: tuple[str, ...] = (),
    insecure_registries: tuple[str, ...] = (),
    for_pull: bool = True,
    certs_dirs: tuple[str, ...] = CERTS_DIRS,
) -> list[Endpoint]:
    out: list[Endpoint] = []
    if host == DOCKER_HUB:
        if for_pull:
            for m in mirrors:
                url = m.rstrip("/")
                if "://" not in url:
                    url = "https://" + url
                mhost = url.split("://", 1)[1].split("/", 1)[0]
                out.append(Endpoint(url, tls_verify=not is_insecure(mhost, insecure_registries),
                                    mirror=True, certs_dir=certs_dir_for(mhost, certs_dirs)))
        out.append(Endpoint(DOCKER_HUB_URL))
        return out
    certs = certs_dir_for(host, certs_dirs)
    if is_insecure(host, insecure_registries):
        return [Endpoint(f"https://{host}", tls_verify=False, certs_dir=certs),
                Endpoint(f"http://{host}", tls_verify=False)]
    return [Endpoint(f"https://{host}", certs_dir=certs)]
