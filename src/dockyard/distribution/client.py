"""One repository on one registry endpoint: ping, manifests, blobs, uploads, with auth.

Lifecycle: a :class:`RepoClient` is made for (endpoint, repository, credentials, actions)
inside an ``aiohttp.ClientSession`` the caller owns; :meth:`RepoClient.ping` learns the
endpoint's auth challenge from ``GET /v2/`` (raising :class:`EndpointUnreachable` when the
endpoint cannot be reached, so the caller may try the next one); every later request carries
the right ``Authorization`` and is retried once after a 401 with fresh credentials.

Errors use the project vocabulary: 401/403 -> PermissionDenied, 404 -> NotFound, unreachable
-> Unavailable (EndpointUnreachable), a registry that sends content other than what it
promised -> InvalidArgument naming the digest. Registry error bodies
(``{"errors": [{"code": "DENIED", "message": ...}]}``) become docker's text:
``denied: requested access to the resource is denied``.

Blob downloads (:meth:`RepoClient.stream_blob`) hand each byte once, in order, to a sink: a
content store ingest (``fetch_blob``: hashed while written, committed only when digest and size
match) or a pull's layer feed (extracted while it downloads, see pull.py); a dropped connection
(or a 429/5xx answer) resumes with ``Range: bytes=N-`` (a registry that ignores Range and
answers 200 sends it all again: the bytes already received are skipped), at most 5 times.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlencode, urljoin

import aiohttp
import yarl

from dockyard.content.store import ContentStore
from dockyard.distribution.auth import Challenge, Credentials, TokenCache, parse_challenges
from dockyard.distribution.certs import ssl_context
from dockyard.distribution.endpoints import Endpoint
from dockyard.errors import InvalidArgument, NotFound, PermissionDenied, Unavailable
from dockyard.oci import mediatypes as mt

MANIFEST_ACCEPT = ", ".join([mt.OCI_MANIFEST, mt.DOCKER_MANIFEST, mt.OCI_INDEX, mt.DOCKER_MANIFEST_LIST])
MAX_MANIFEST = 4 << 20  # as containerd: a manifest larger than this is refused
CHUNK = 1 << 20
MAX_RESUMES = 5
TIMEOUT = aiohttp.ClientTimeout(total=None, connect=15, sock_connect=15, sock_read=120)

Progress = Callable[[int], Awaitable[None]]


RETRY_DELAY = 0.2  # seconds, times the attempt number, after a 429/5xx on a blob
_TRANSIENT = frozenset({429, 500, 502, 503, 504})


class _Transient(Exception):
    """A blob GET answered 429/5xx: worth another try (docker retries downloads too)."""


class EndpointUnreachable(Unavailable):
    """The endpoint could not be reached at all (connection, TLS): the next one may be tried."""


_BODYLESS = {
    401: "unauthorized: authentication required",
    403: "denied: requested access to the resource is denied",
    404: "not found",
}


def registry_message(status: int, body: bytes) -> str:
    """Docker's rendering of a registry error body: ``code: message`` (lower-case code)."""
    try:
        errs = json.loads(body).get("errors") or []
        parts = [f"{str(e.get('code', '')).lower().replace('_', ' ')}: {e.get('message', '')}"
                 for e in errs if isinstance(e, dict)]
        if parts:
            return "; ".join(parts)
    except (ValueError, AttributeError):
        pass
    text = body.decode(errors="replace").strip()[:200]
    if not text and status in _BODYLESS:  # HEAD answers carry no body
        return _BODYLESS[status]
    return f"unexpected status {status}" + (f": {text}" if text else "")


class RepositoryUnknown(NotFound):
    """The registry answered NAME_UNKNOWN: the repository itself does not exist (dockerd
    words this "repository <name> not found", not "manifest for <ref> not found")."""


def _codes(body: bytes) -> set[str]:
    try:
        errs = json.loads(body).get("errors") or []
        return {str(e.get("code", "")) for e in errs if isinstance(e, dict)}
    except (ValueError, AttributeError):
        return set()


def error_for(status: int, body: bytes, what: str = "") -> Exception:
    msg = registry_message(status, body)
    if what and status not in (401, 403):  # docker shows auth refusals bare
        msg = f"{what}: {msg}"
    if status in (401, 403):
        return PermissionDenied(msg)
    if status == 404:
        return RepositoryUnknown(msg) if "NAME_UNKNOWN" in _codes(body) else NotFound(msg)
    if status in (400, 405, 409, 413, 415, 416, 422):
        return InvalidArgument(msg)
    return Unavailable(msg)


# OpenSSL's reasons when a TLS client hello is answered in plain HTTP
_PLAIN_HTTP_REASONS = frozenset({"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG",
                                 "HTTP_REQUEST", "UNKNOWN_PROTOCOL"})
# X509_V_ERR_*: self-signed leaf, self-signed in chain, no local issuer, cannot verify leaf
_UNKNOWN_AUTHORITY = frozenset({18, 19, 20, 21})


def tls_cause(e: BaseException) -> str | None:
    """Go's wording for a TLS failure (what dockerd prints), or None for other errors.

    A plain-http server answering https is ``http: server gave HTTP response to HTTPS client``
    (the hint that a registry must be listed in ``--insecure-registry``); an unknown CA is
    ``tls: failed to verify certificate: x509: certificate signed by unknown authority``."""
    if isinstance(e, aiohttp.ClientConnectorCertificateError):
        cert = e.certificate_error
        if isinstance(cert, ssl.SSLCertVerificationError):
            if cert.verify_code in _UNKNOWN_AUTHORITY:
                return "tls: failed to verify certificate: x509: certificate signed by unknown authority"
            return f"tls: failed to verify certificate: x509: {cert.verify_message}"
        return f"tls: failed to verify certificate: {cert}"
    cause = getattr(e, "os_error", None) if isinstance(e, aiohttp.ClientConnectorError) else e
    if isinstance(cause, ssl.SSLError) and str(cause.reason or "").upper() in _PLAIN_HTTP_REASONS:
        return "http: server gave HTTP response to HTTPS client"
    return None


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class RepoClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        endpoint: Endpoint,
        repo: str,
        *,
        creds: Credentials,
        tokens: TokenCache,
        actions: str = "pull",
        extra_scopes: tuple[str, ...] = (),
    ) -> None:
        self.session = session
        self.endpoint = endpoint
        self.repo = repo
        self.creds = creds
        self.tokens = tokens
        self.scopes = (f"repository:{repo}:{actions}", *extra_scopes)
        self.challenge: Challenge | None = None
        self._ssl: Any = None if endpoint.tls_verify else False
        if endpoint.secure and endpoint.certs_dir:  # certs.d/<host>: its CAs, client certs
            self._ssl = ssl_context(endpoint.certs_dir, verify=endpoint.tls_verify)

    # ------------------------------------------------------------------ plumbing

    def url(self, path: str) -> str:
        return self.endpoint.url + path

    async def _send(self, method: str, url: str, *, headers: dict[str, str] | None = None,
                    data: Any = None, allow_redirects: bool = True) -> aiohttp.ClientResponse:
        try:
            return await self.session.request(
                method, yarl.URL(url, encoded=True), headers=headers, data=data, ssl=self._ssl,
                allow_redirects=allow_redirects, timeout=TIMEOUT,
            )
        except (TimeoutError, aiohttp.ClientConnectorError, aiohttp.ClientSSLError, aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as e:
            # dockerd's wording: Get "https://host/v2/": <cause>
            raise EndpointUnreachable(f'{method.capitalize()} "{url}": {tls_cause(e) or e or type(e).__name__}') from None

    async def ping(self) -> None:
        """``GET /v2/``: learn the challenge. Unreachable or not a registry -> EndpointUnreachable."""
        url = self.url("/v2/")
        try:
            resp = await self._send("GET", url)
        except aiohttp.ClientResponseError as e:
            raise EndpointUnreachable(f'Get "{url}": {e}') from None
        async with resp:
            await resp.read()
            if resp.status == 401:
                self._learn(resp)
            elif resp.status >= 400 and resp.status != 404:
                # a plain-http server answering a TLS probe, or something that is no registry
                raise EndpointUnreachable(f'Get "{url}": unexpected status {resp.status}')

    def _learn(self, resp: aiohttp.ClientResponse) -> None:
        chs = parse_challenges(resp.headers.getall("WWW-Authenticate", []))
        for ch in chs:
            if ch.scheme == "bearer":
                self.challenge = ch
                return
        for ch in chs:
            if ch.scheme == "basic":
                self.challenge = ch
                return

    def _token_key(self) -> tuple[str, str, str, str]:
        assert self.challenge is not None
        return (self.challenge.realm, self.challenge.params.get("service", ""),
                " ".join(self.scopes), self.creds.username)

    async def fetch_token(self, scopes: tuple[str, ...] | None = None) -> str:
        """Ask the challenge's realm for a bearer token (Docker's token flow)."""
        assert self.challenge is not None and self.challenge.scheme == "bearer"
        if self.creds.registry_token:
            return self.creds.registry_token
        realm = self.challenge.realm
        if not realm:
            raise PermissionDenied("unauthorized: the registry's bearer challenge has no realm")
        service = self.challenge.params.get("service", "")
        scopes = self.scopes if scopes is None else scopes
        if self.creds.identity_token:
            form = {"grant_type": "refresh_token", "refresh_token": self.creds.identity_token,
                    "service": service, "client_id": "dockyard", "scope": " ".join(scopes)}
            resp = await self._send("POST", realm, data=form)
        else:
            q: list[tuple[str, str]] = [("service", service)] if service else []
            q += [("scope", s) for s in scopes]
            if self.creds.username:
                q.append(("account", self.creds.username))
            url = realm + ("&" if "?" in realm else "?") + urlencode(q, quote_via=quote)
            h = {}
            basic = self.creds.basic_header()
            if basic:
                h["Authorization"] = basic
            resp = await self._send("GET", url, headers=h)
        async with resp:
            body = await resp.read()
            if resp.status in (401, 403):
                raise PermissionDenied(
                    f'Get "{realm}": {registry_message(resp.status, body) if body else "unauthorized"}'
                )
            if resp.status != 200:
                raise Unavailable(f'Get "{realm}": {registry_message(resp.status, body)}')
            try:
                doc = json.loads(body)
                token = doc.get("token") or doc.get("access_token")
            except (ValueError, AttributeError):
                token = None
            if not token:
                raise Unavailable(f'Get "{realm}": the token server sent no token')
            if scopes is self.scopes:
                self.tokens.put(self._token_key(), token, int(doc.get("expires_in") or 60))
            return str(token)

    async def _auth_header(self, fresh: bool = False) -> str | None:
        ch = self.challenge
        if ch is None:
            return None
        if ch.scheme == "basic":
            return self.creds.basic_header()
        if ch.scheme == "bearer":
            token = None if fresh else self.tokens.get(self._token_key())
            if token is None:
                token = await self.fetch_token()
            return f"Bearer {token}"
        return None

    async def request(
        self, method: str, path: str, *, headers: dict[str, str] | None = None,
        data: Any = None, data_factory: Callable[[], Any] | None = None,
        allow_redirects: bool = True,
    ) -> aiohttp.ClientResponse:
        """Send with auth; after a 401, learn the challenge, get fresh credentials, retry once.

        ``path`` is ``/v2/...`` or an absolute URL (an upload Location). A body that can only be
        sent once is given as ``data_factory`` (called per attempt)."""
        url = path if path.startswith(("http://", "https://")) else self.url(path)
        for attempt in (0, 1):
            h = dict(headers or {})
            auth = await self._auth_header(fresh=attempt == 1)
            if auth:
                h["Authorization"] = auth
            body = data_factory() if data_factory is not None else data
            resp = await self._send(method, url, headers=h, data=body, allow_redirects=allow_redirects)
            if resp.status != 401 or attempt == 1:
                return resp
            had = self.challenge
            self._learn(resp)
            if self.challenge is None or (had is not None and had.scheme == "basic"
                                          and self.challenge.scheme == "basic"):
                return resp
            if self.challenge.scheme == "basic" and not self.creds.username:
                return resp
            await resp.read()
            resp.release()
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ manifests

    async def get_manifest(self, reference: str) -> tuple[bytes, str, str]:
        """(bytes, media type, digest) of a manifest by tag or digest, digest verified."""
        resp = await self.request("GET", f"/v2/{self.repo}/manifests/{reference}",
                                  headers={"Accept": MANIFEST_ACCEPT})
        async with resp:
            if resp.status != 200:
                body = await resp.read()
                raise error_for(resp.status, body)
            data = bytearray()
            async for chunk in resp.content.iter_chunked(CHUNK):
                data += chunk
                if len(data) > MAX_MANIFEST:
                    raise InvalidArgument(f"manifest {reference}: larger than {MAX_MANIFEST} bytes")
            ctype = resp.headers.get("Content-Type", "").split(";")[0].strip()
            header_digest = resp.headers.get("Docker-Content-Digest", "")
        body = bytes(data)
        digest = sha256(body)
        if reference.startswith("sha256:") and digest != reference:
            raise InvalidArgument(
                f"manifest verification failed for digest {reference}: the registry sent content "
                f"with digest {digest}"
            )
        if header_digest.startswith("sha256:") and header_digest != digest:
            raise InvalidArgument(
                f"manifest for {reference}: Docker-Content-Digest {header_digest} does not match "
                f"the content ({digest})"
            )
        try:
            doc = json.loads(body)
        except ValueError as e:
            raise InvalidArgument(f"manifest {reference}: invalid JSON: {e}") from None
        if not isinstance(doc, dict):
            raise InvalidArgument(f"manifest {reference}: not a JSON object")
        media_type = doc.get("mediaType") or ctype
        if media_type not in mt.MANIFEST_TYPES | mt.INDEX_TYPES:
            if "manifests" in doc:
                media_type = mt.OCI_INDEX
            elif "layers" in doc:
                media_type = mt.OCI_MANIFEST
            else:
                raise InvalidArgument(f"manifest {reference}: unsupported media type {media_type!r}")
        return body, media_type, digest

    async def put_manifest(self, reference: str, data: bytes, media_type: str) -> str:
        resp = await self.request("PUT", f"/v2/{self.repo}/manifests/{reference}",
                                  headers={"Content-Type": media_type}, data=data)
        async with resp:
            body = await resp.read()
            if resp.status not in (200, 201):
                raise error_for(resp.status, body)
        return sha256(data)

    async def list_tags(self) -> list[str]:
        """Every tag of the repository, following ``Link: <...>; rel="next"`` pages."""
        tags: list[str] = []
        path: str | None = f"/v2/{self.repo}/tags/list"
        while path:
            resp = await self.request("GET", path)
            async with resp:
                body = await resp.read()
                if resp.status != 200:
                    raise error_for(resp.status, body)
                link = resp.headers.get("Link", "")
            try:
                tags += [str(t) for t in (json.loads(body).get("tags") or [])]
            except (ValueError, AttributeError):
                raise InvalidArgument("tags list: invalid JSON") from None
            m = re.match(r'\s*<([^>]+)>\s*;\s*rel="?next"?', link)
            path = urljoin(self.endpoint.url + "/", m.group(1)) if m else None
        return tags

    # ------------------------------------------------------------------ blobs

    async def fetch_blob(self, store: ContentStore, digest: str, size: int,
                         progress: Progress | None = None, *, kind: str = "filesystem layer") -> None:
        """Download a blob into ``store``, verified; resume a dropped transfer with Range."""
        with store.writer() as writer:
            await self.stream_blob(digest, size, writer.write, progress, kind=kind)
            try:
                writer.commit(expected_digest=digest, expected_size=size)
            except InvalidArgument as e:
                raise InvalidArgument(f"{kind} verification failed for digest {digest}: {e}") from None

    async def stream_blob(self, digest: str, size: int, sink: Callable[[bytes], None],
                          progress: Progress | None = None, *, kind: str = "filesystem layer") -> None:
        """Hand the ``size`` bytes of blob ``digest`` to ``sink`` in order, each byte once.

        A dropped connection (or a 429/5xx) resumes with ``Range: bytes=N-``; a registry that
        ignores Range answers 200 with the whole blob again, whose first N bytes are skipped
        (the caller verifies the digest of what ``sink`` got, so a registry that changed them
        is caught there). More than ``size`` bytes is refused at once. The digest is NOT
        checked here: the caller hashes (the content store writer, or the layer extractor)."""
        received = 0
        resumes = 0
        while True:
            h = {"Range": f"bytes={received}-"} if received else {}
            try:
                resp = await self.request("GET", f"/v2/{self.repo}/blobs/{digest}", headers=h)
                async with resp:
                    skip = 0
                    if resp.status == 206 and received:
                        cr = resp.headers.get("Content-Range", "")
                        if not cr.startswith(f"bytes {received}-"):
                            raise InvalidArgument(f"blob {digest}: the registry answered "
                                                  f"a Range request with {cr!r}")
                    elif resp.status == 200:
                        skip = received  # no Range support: the whole blob again
                    elif resp.status in _TRANSIENT:
                        raise _Transient(registry_message(resp.status, await resp.read()))
                    else:
                        raise error_for(resp.status, await resp.read(), f"blob {digest}")
                    while chunk := await resp.content.readany():
                        if skip:
                            if len(chunk) <= skip:
                                skip -= len(chunk)
                                continue
                            chunk, skip = chunk[skip:], 0
                        if received + len(chunk) > size:
                            raise InvalidArgument(
                                f"{kind} verification failed for digest {digest}: "
                                f"the registry sent more than the {size} bytes announced"
                            )
                        sink(chunk)
                        received += len(chunk)
                        if progress is not None:
                            await progress(received)
                if received >= size:
                    return
                raise aiohttp.ClientPayloadError("response ended early")
            except (TimeoutError, aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError,
                    aiohttp.ClientOSError, EndpointUnreachable, _Transient) as e:
                resumes += 1
                if resumes > MAX_RESUMES:
                    raise Unavailable(
                        f"blob {digest}: download failed after {received} of {size} bytes "
                        f"and {MAX_RESUMES} resumes: {e or type(e).__name__}"
                    ) from None
                if isinstance(e, _Transient):
                    await asyncio.sleep(RETRY_DELAY * resumes)  # an overloaded registry

    async def blob_exists(self, digest: str) -> bool:
        resp = await self.request("HEAD", f"/v2/{self.repo}/blobs/{digest}")
        async with resp:
            if resp.status == 200:
                return True
            if resp.status == 404:
                return False
            raise error_for(resp.status, await resp.read(), f"blob {digest}")

    async def start_upload(self, mount: str | None = None, from_repo: str | None = None) -> str | None:
        """POST an upload. Returns its absolute Location, or None when the mount succeeded."""
        q = f"?mount={mount}&from={quote(from_repo, safe='/')}" if mount and from_repo else ""
        resp = await self.request("POST", f"/v2/{self.repo}/blobs/uploads/{q}")
        async with resp:
            body = await resp.read()
            if resp.status == 201 and q:
                return None
            if resp.status != 202:
                raise error_for(resp.status, body)
            loc = resp.headers.get("Location")
            if not loc:
                raise Unavailable("the registry started an upload without a Location")
        return urljoin(self.endpoint.url + "/", loc)

    async def cancel_upload(self, location: str) -> None:
        """DELETE an upload session (best effort: the registry expires it anyway)."""
        try:
            resp = await self.request("DELETE", location)
            async with resp:
                await resp.read()
        except Unavailable:
            pass

    async def upload_blob(self, store: ContentStore, digest: str, size: int,
                          progress: Progress | None = None, location: str | None = None) -> None:
        """Monolithic upload of a stored blob, sent as it is (POST, then PUT ?digest=)."""
        loc = location or await self.start_upload()
        assert loc is not None
        url = loc + ("&" if "?" in loc else "?") + "digest=" + quote(digest, safe="")

        async def body() -> AsyncIterator[bytes]:
            sent = 0
            with store.open(digest) as f:
                while chunk := f.read(CHUNK):
                    yield chunk
                    sent += len(chunk)
                    if progress is not None:
                        await progress(sent)

        resp = await self.request(
            "PUT", url, headers={"Content-Type": "application/octet-stream",
                                 "Content-Length": str(size)},
            data_factory=body,
        )
        async with resp:
            rbody = await resp.read()
            if resp.status not in (201, 204):
                raise error_for(resp.status, rbody, f"blob {digest}")

    async def get_small_blob(self, digest: str, limit: int = MAX_MANIFEST) -> bytes:
        """A small blob (an image config) in memory, verified."""
        resp = await self.request("GET", f"/v2/{self.repo}/blobs/{digest}")
        async with resp:
            if resp.status != 200:
                raise error_for(resp.status, await resp.read(), f"blob {digest}")
            data = bytearray()
            async for chunk in resp.content.iter_chunked(CHUNK):
                data += chunk
                if len(data) > limit:
                    raise InvalidArgument(f"blob {digest}: larger than {limit} bytes")
        if sha256(bytes(data)) != digest:
            raise InvalidArgument(f"blob {digest}: the registry sent content with another digest")
        return bytes(data)
