"""Where a client keeps registry credentials: the docker CLI's config.json and its helpers.

``$DOCKER_CONFIG/config.json`` (default ``~/.docker/config.json``)::

    {
      "auths": {"<key>": {"auth": base64("user:pass"), "identitytoken": "..."}},  # file store
      "credsStore": "<name>",                 # a helper for every registry
      "credHelpers": {"<key>": "<name>"}      # a helper for one registry (wins over credsStore)
    }

``<key>`` is ``https://index.docker.io/v1/`` for Docker Hub and ``host[:port]`` otherwise
(``auth_key``). Lookups also accept entries written as URLs (``https://host/v2/``), as docker
does.

A helper is the program ``docker-credential-<name>`` on PATH (docker-credential-helpers'
protocol; one verb per run, data on stdin, answer on stdout):

    get    stdin "<key>"                                  -> {"ServerURL","Username","Secret"}
           absent: exit status != 0 and "credentials not found in native keychain"
    store  stdin {"ServerURL","Username","Secret"}
    erase  stdin "<key>"

``Username`` ``<token>`` means ``Secret`` is an identity (refresh) token. With a helper, the
file keeps an empty ``auths[<key>] = {}`` so that the registry stays listed (docker does the
same). The file is rewritten atomically (temp + rename, mode 0600).

Errors: a helper that can't run or fails (other than "not found") raises Unavailable naming
the helper and its output; a config file that isn't JSON raises InvalidArgument.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from dockyard.distribution.auth import (
    DOCKER_HUB_AUTH_KEY,
    Credentials,
    from_auth_config,
    normalize_server_address,
)
from dockyard.errors import InvalidArgument, Unavailable

TOKEN_USERNAME = "<token>"
_NOT_FOUND = "credentials not found in native keychain"
HELPER_TIMEOUT = 60.0


def config_path() -> Path:
    base = os.environ.get("DOCKER_CONFIG") or str(Path.home() / ".docker")
    return Path(base) / "config.json"


def auth_key(server: str | None) -> str:
    """The key docker files credentials under: Hub's URL, else ``host[:port]``."""
    host = normalize_server_address(server or "docker.io")
    return DOCKER_HUB_AUTH_KEY if host == "docker.io" else host


def read_config(path: Path | None = None) -> dict[str, Any]:
    p = path or config_path()
    try:
        doc = json.loads(p.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise InvalidArgument(f"{p}: cannot read docker config: {e}") from None
    if not isinstance(doc, dict):
        raise InvalidArgument(f"{p}: not a JSON object")
    return doc


def write_config(doc: dict[str, Any], path: Path | None = None) -> None:
    p = path or config_path()
    p.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent="\t")
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _matching_keys(mapping: dict[str, Any], key: str) -> list[str]:
    """Keys of ``mapping`` naming the same registry as ``key`` (exact first)."""
    host = normalize_server_address(key)
    exact = [key] if key in mapping else []
    return exact + [k for k in mapping if k != key and normalize_server_address(k) == host]


def helper_for(doc: dict[str, Any], key: str) -> str | None:
    """The helper name configured for ``key``: credHelpers, then credsStore, else None."""
    helpers = doc.get("credHelpers")
    if isinstance(helpers, dict):
        for k in _matching_keys(helpers, key):
            if helpers[k]:
                return str(helpers[k])
    store = doc.get("credsStore")
    return str(store) if store else None


def run_helper(name: str, verb: str, payload: str) -> str:
    """Run ``docker-credential-<name> <verb>`` with ``payload`` on stdin; return stdout.

    Raises LookupError when the helper reports that it has no credentials (``get``/``erase``)
    and Unavailable for anything else that goes wrong."""
    prog = f"docker-credential-{name}"
    exe = shutil.which(prog)
    if exe is None:
        raise Unavailable(f'error getting credentials - err: exec: "{prog}": executable file '
                          f"not found in $PATH, out: ``")
    try:
        r = subprocess.run([exe, verb], input=payload.encode(), capture_output=True,
                           timeout=HELPER_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise Unavailable(f"credential helper {prog} {verb}: {e}") from None
    out = r.stdout.decode(errors="replace").strip()
    if r.returncode != 0:
        msg = out or r.stderr.decode(errors="replace").strip()
        if _NOT_FOUND in msg:
            raise LookupError(msg)
        raise Unavailable(f"credential helper {prog} {verb} failed (exit status "
                          f"{r.returncode}): {msg}")
    return out


def get(server: str, path: Path | None = None) -> Credentials | None:
    """The stored credentials for registry ``server`` (host, URL or key), or None."""
    key = auth_key(server)
    doc = read_config(path)
    helper = helper_for(doc, key)
    if helper is not None:
        try:
            out = run_helper(helper, "get", key)
        except LookupError:
            return None
        try:
            data = json.loads(out)
        except ValueError:
            raise Unavailable(f"credential helper docker-credential-{helper} get: "
                              f"invalid JSON answer: {out[:200]!r}") from None
        user, secret = str(data.get("Username") or ""), str(data.get("Secret") or "")
        if user == TOKEN_USERNAME:
            return Credentials(identity_token=secret)
        if not user and not secret:
            return None
        return Credentials(user, secret)
    auths = doc.get("auths")
    if not isinstance(auths, dict):
        return None
    for k in _matching_keys(auths, key):
        entry = auths[k]
        if isinstance(entry, dict):
            creds = from_auth_config(entry)
            if not creds.anonymous:
                return creds
    return None


def store(server: str, creds: Credentials, path: Path | None = None) -> None:
    """Save ``creds`` for ``server`` where docker would: its helper, else the file."""
    key = auth_key(server)
    doc = read_config(path)
    auths = doc.get("auths")
    if not isinstance(auths, dict):
        auths = doc["auths"] = {}
    helper = helper_for(doc, key)
    if helper is not None:
        user, secret = creds.username, creds.password
        if creds.identity_token:
            user, secret = TOKEN_USERNAME, creds.identity_token
        run_helper(helper, "store",
                   json.dumps({"ServerURL": key, "Username": user, "Secret": secret}))
        auths[key] = {}
    else:
        entry: dict[str, str] = {"auth": base64.b64encode(
            f"{creds.username}:{'' if creds.identity_token else creds.password}".encode()
        ).decode()}
        if creds.identity_token:
            entry["identitytoken"] = creds.identity_token
        auths[key] = entry
    write_config(doc, path)


def erase(server: str, path: Path | None = None) -> bool:
    """Forget the credentials for ``server``; False when the file doesn't list it (docker's
    test for "logged in", since a helper's secrets can't be listed cheaply). The file entry
    goes first, then the helper is told; a helper without the secret is fine, a failing one
    raises Unavailable (the file is already updated)."""
    key = auth_key(server)
    doc = read_config(path)
    auths = doc.get("auths")
    hits = _matching_keys(auths, key) if isinstance(auths, dict) else []
    if not hits:
        return False
    assert isinstance(auths, dict)
    for k in hits:
        del auths[k]
    write_config(doc, path)
    helper = helper_for(doc, key)
    if helper is not None:
        try:
            run_helper(helper, "erase", key)
        except LookupError:
            pass
    return True
