"""The registry SERVER: an OCI distribution-spec registry, run as its own process.

``dockyard registry serve`` (see ``cli.py``) starts ``server.run``; storage lives under one root
directory (``layout.py`` draws it). Modules, one idea each:

- ``names``      repository-name / tag grammar
- ``errcodes``   the spec's error codes as subclasses of ``dockyard.errors``
- ``layout``     where everything lives on disk
- ``fsutil``     atomic writes and links
- ``blobstore``  content-addressed blobs (global, shared by all repositories)
- ``uploads``    upload sessions (POST/PATCH/PUT), verified on commit
- ``manifest``   parsing and checking manifests (OCI + Docker schema 2, indexes/lists)
- ``repository`` per-repository links: layers, manifest revisions, tags, referrers; catalog
- ``config``     configuration (YAML/JSON file + CLI flags)
- ``htpasswd``, ``access``, ``tokens``, ``auth``  basic and bearer-token authentication
- ``proxy``      pull-through cache of an upstream registry
- ``app``        the aiohttp application (routing, headers, error bodies)
- ``server``     bind, TLS, serve until signalled
- ``gc``         mark-and-sweep garbage collection
"""
