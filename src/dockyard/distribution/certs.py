"""Per-registry TLS material, read as dockerd reads ``/etc/docker/certs.d``.

Layout (the first directory that has an entry for the host wins; ours, then docker's, so
that a host configured for the docker CLI/dockerd works here unchanged)::

    /etc/dockyard/certs.d/            (ours)
    /etc/docker/certs.d/              (dockerd's)
    └── <host>[:<port>]/              e.g. registry.example:5000, 10.0.0.7:5000
        ├── ca.crt                    every *.crt: a CA trusted besides the system's
        ├── client.cert               every *.cert with its *.key: a client certificate
        └── client.key

A ``*.cert`` without its ``*.key`` (or the reverse) is an error naming the file, as in
dockerd. The context is built per operation (files read then), so a CA dropped in place
takes effect at the next pull without a daemon restart, as with dockerd.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from dockyard.errors import InvalidArgument

CERTS_DIRS: tuple[str, ...] = ("/etc/dockyard/certs.d", "/etc/docker/certs.d")


def certs_dir_for(host: str, dirs: tuple[str, ...] = CERTS_DIRS) -> str:
    """The ``<dir>/<host>`` directory that holds TLS files for ``host`` ("" when none)."""
    if not host or "/" in host or host in (".", ".."):
        return ""
    for d in dirs:
        p = Path(d) / host
        if p.is_dir():
            return str(p)
    return ""


def ssl_context(certs_dir: str, *, verify: bool) -> ssl.SSLContext:
    """A client context: the system CAs plus the directory's ``*.crt``, its client certs;
    ``verify=False`` (an insecure registry) keeps the client certs but checks nothing."""
    ctx = ssl.create_default_context()
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if not certs_dir:
        return ctx
    d = Path(certs_dir)
    for f in sorted(d.iterdir()):
        try:
            if f.suffix == ".crt" and verify:
                ctx.load_verify_locations(cafile=str(f))
            elif f.suffix == ".cert":
                key = f.with_suffix(".key")
                if not key.exists():
                    raise InvalidArgument(f"missing key {key.name} for client certificate {f}. "
                                          "CA certificates must use the extension .crt")
                ctx.load_cert_chain(str(f), str(key))
            elif f.suffix == ".key" and not f.with_suffix(".cert").exists():
                raise InvalidArgument(f"missing client certificate {f.with_suffix('.cert').name} "
                                      f"for key {f}")
        except (ssl.SSLError, OSError) as e:
            raise InvalidArgument(f"{f}: cannot load TLS file: {e}") from None
    return ctx
