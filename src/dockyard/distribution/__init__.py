"""The registry client of the engine: pull, push, login (OCI distribution spec, Docker's flows).

Modules, one idea each::

    progress.py    docker's JSON progress messages (what the docker CLI renders)
    auth.py        credentials (X-Registry-Auth, ~/.docker/config.json), challenges, token cache
    credstore.py   the CLI side: config.json auths, credsStore/credHelpers (docker-credential-*)
    endpoints.py   which base URLs serve a registry host (mirrors, https/http, insecure)
    certs.py       certs.d/<host:port> CAs and client certs (dockerd's /etc/docker/certs.d)
    client.py      one repository on one endpoint: ping, manifests, blobs (Range resume), uploads
    pull.py        pull(ref) -> blobs verified into the content store -> ImageService.add_image
    feed.py        a file one side writes while another reads it (extract while downloading)
    pullprogress.py  a pull's per-layer Extracting/Pull complete lines, in dockerd's order
    push.py        push(ref) -> HEAD/mount/upload stored blobs as they are -> manifest PUT
    login.py       check credentials against a registry (POST /auth)
    inspect.py     descriptor + platforms of a remote reference (GET /distribution/{name}/json)
    service.py     Distribution: the daemon-wide object (config, token cache) the API calls
    tasks.py       run transfers concurrently; the first failure is raised as itself
"""
