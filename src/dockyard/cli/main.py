"""`dockyard`: docker's verbs and flags, talking to dockyardd over the Engine API.

Start-up is the point of this module's shape: no click/argparse, no eager imports. ``main``
parses the global flags (``-H/--host``, DOCKYARD_HOST, DOCKER_HOST), looks the verb up in
``VERBS`` (verb -> "module:function") or ``GROUPS`` (management commands: ``container ls``,
``image rm``, ...), imports only that module and calls ``fn(globals, argv) -> exit code``.
Exit codes: a flag error 125 (as docker), a usage error 1, a daemon error 1 (``run``/``create``
return 125 themselves). ``registry`` mounts the registry server's click group, imported lazily.
"""

from __future__ import annotations

import sys

VERBS: dict[str, str] = {
    "attach": "containers:attach", "commit": "containers:commit", "cp": "containers:cp",
    "create": "containers:create", "diff": "containers:diff", "exec": "containers:exec_",
    "export": "containers:export", "inspect": "containers:inspect", "kill": "containers:kill",
    "logs": "containers:logs", "pause": "containers:pause", "port": "containers:port", "ps": "containers:ps",
    "rename": "containers:rename", "restart": "containers:restart", "rm": "containers:rm", "run": "containers:run",
    "start": "containers:start", "stats": "containers:stats", "stop": "containers:stop", "top": "containers:top",
    "unpause": "containers:unpause", "update": "containers:update", "wait": "containers:wait",
    "build": "images:build", "history": "images:history", "images": "images:images", "import": "images:import_",
    "load": "images:load", "pull": "images:pull", "push": "images:push", "rmi": "images:rmi",
    "save": "images:save", "tag": "images:tag",
    "events": "system:events", "info": "system:info", "version": "system:version",
    "login": "system:login", "logout": "system:logout",
    "network": "resources:network", "volume": "resources:volume",
}

GROUPS: dict[str, dict[str, str]] = {
    "container": {"attach": "attach", "commit": "commit", "cp": "cp", "create": "create", "diff": "diff",
                  "exec": "exec", "export": "export", "inspect": "containers:container_inspect", "kill": "kill",
                  "logs": "logs", "ls": "ps", "list": "ps", "ps": "ps", "pause": "pause", "port": "port",
                  "prune": "containers:prune", "rename": "rename", "restart": "restart", "rm": "rm",
                  "remove": "rm", "run": "run", "start": "start", "stats": "stats", "stop": "stop", "top": "top",
                  "unpause": "unpause", "update": "update", "wait": "wait"},
    "image": {"build": "build", "history": "history", "import": "import", "inspect": "images:image_inspect",
              "load": "load", "ls": "images", "list": "images", "prune": "images:prune", "pull": "pull",
              "push": "push", "rm": "rmi", "remove": "rmi", "save": "save", "tag": "tag"},
    "system": {"df": "system:df", "events": "events", "info": "info", "prune": "system:system_prune"},
    "builder": {"build": "build", "prune": "system:builder_prune"},
}

GLOBAL_SPEC = "H|host* D|debug l|log-level= config= c|context= tls tlsverify tlscacert= tlscert= tlskey= v|version"

SUMMARY = {
    "attach": "Attach local standard input, output, and error streams to a running container",
    "build": "Build an image from a Dockerfile", "commit": "Create a new image from a container's changes",
    "cp": "Copy files/folders between a container and the local filesystem", "create": "Create a new container",
    "diff": "Inspect changes to files or directories on a container's filesystem",
    "events": "Get real time events from the server", "exec": "Execute a command in a running container",
    "export": "Export a container's filesystem as a tar archive", "history": "Show the history of an image",
    "images": "List images", "import": "Import the contents from a tarball to create a filesystem image",
    "info": "Display system-wide information", "inspect": "Return low-level information on Docker objects",
    "kill": "Kill one or more running containers", "load": "Load an image from a tar archive or STDIN",
    "login": "Log in to a registry", "logout": "Log out from a registry", "logs": "Fetch the logs of a container",
    "pause": "Pause all processes within one or more containers",
    "port": "List port mappings or a specific mapping for the container", "ps": "List containers",
    "pull": "Download an image from a registry", "push": "Upload an image to a registry",
    "rename": "Rename a container", "restart": "Restart one or more containers",
    "rm": "Remove one or more containers", "rmi": "Remove one or more images",
    "run": "Create and run a new container from an image",
    "save": "Save one or more images to a tar archive (streamed to STDOUT by default)",
    "start": "Start one or more stopped containers",
    "stats": "Display a live stream of container(s) resource usage statistics",
    "stop": "Stop one or more running containers",
    "tag": "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
    "top": "Display the running processes of a container",
    "unpause": "Unpause all processes within one or more containers",
    "update": "Update configuration of one or more containers", "version": "Show the Dockyard version information",
    "wait": "Block until one or more containers stop, then print their exit codes",
    "builder": "Manage builds", "container": "Manage containers", "image": "Manage images",
    "network": "Manage networks", "system": "Manage Dockyard", "volume": "Manage volumes",
    "registry": "Run an OCI distribution registry",
}


USAGE = {
    "attach": "[OPTIONS] CONTAINER", "commit": "[OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
    "cp": "[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tdockyard cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
    "create": "[OPTIONS] IMAGE [COMMAND] [ARG...]", "diff": "CONTAINER", "exec": "[OPTIONS] CONTAINER COMMAND [ARG...]",
    "export": "[OPTIONS] CONTAINER", "inspect": "[OPTIONS] NAME|ID [NAME|ID...]",
    "kill": "[OPTIONS] CONTAINER [CONTAINER...]", "logs": "[OPTIONS] CONTAINER", "pause": "CONTAINER [CONTAINER...]",
    "port": "CONTAINER [PRIVATE_PORT[/PROTO]]", "rename": "CONTAINER NEW_NAME",
    "restart": "[OPTIONS] CONTAINER [CONTAINER...]", "rm": "[OPTIONS] CONTAINER [CONTAINER...]",
    "run": "[OPTIONS] IMAGE [COMMAND] [ARG...]", "start": "[OPTIONS] CONTAINER [CONTAINER...]",
    "stats": "[OPTIONS] [CONTAINER...]", "stop": "[OPTIONS] CONTAINER [CONTAINER...]",
    "top": "CONTAINER [ps OPTIONS]", "unpause": "CONTAINER [CONTAINER...]",
    "update": "[OPTIONS] CONTAINER [CONTAINER...]", "wait": "CONTAINER [CONTAINER...]",
    "build": "[OPTIONS] PATH | URL | -", "history": "[OPTIONS] IMAGE", "images": "[OPTIONS] [REPOSITORY[:TAG]]",
    "import": "[OPTIONS] file|URL|- [REPOSITORY[:TAG]]", "pull": "[OPTIONS] NAME[:TAG|@DIGEST]",
    "push": "[OPTIONS] NAME[:TAG]", "rmi": "[OPTIONS] IMAGE [IMAGE...]", "save": "[OPTIONS] IMAGE [IMAGE...]",
    "tag": "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]", "login": "[OPTIONS] [SERVER]", "logout": "[SERVER]",
}


class Help(Exception):
    """``--help`` (or a management command without a subcommand): print usage, exit 0."""

    def __init__(self, topic: str = "") -> None:
        self.topic = topic


def _usage(topic: str) -> str:
    if topic in GROUPS or topic in ("network", "volume"):
        subs = sorted(GROUPS.get(topic) or {
            "network": ["connect", "create", "disconnect", "inspect", "ls", "prune", "rm"],
            "volume": ["create", "inspect", "ls", "prune", "rm"]}[topic])
        return (f"\nUsage:  dockyard {topic} COMMAND\n\n{SUMMARY.get(topic, '')}\n\nCommands:\n"
                + "".join(f"  {s}\n" for s in subs))
    if topic:
        from dockyard.cli import flags
        opts = flags.describe(flags.LAST_SPEC) if flags.LAST_SPEC != GLOBAL_SPEC else []
        return (f"\nUsage:  dockyard {topic} {USAGE.get(topic.split()[-1], '[OPTIONS]')}\n\n"
                f"{SUMMARY.get(topic.split()[-1], '')}\n" + ("\nOptions:\n" + "\n".join(opts) + "\n" if opts else ""))
    lines = ["", "Usage:  dockyard [OPTIONS] COMMAND", "", "A container engine's command line", "",
             "Commands:"]
    lines += [f"  {k:<10} {SUMMARY.get(k, '')}" for k in sorted([*VERBS, *GROUPS, "registry"])]
    lines += ["", "Global Options:", "  -H, --host string   Daemon socket to connect to (unix:///path)",
              "  -v, --version       Print version information and quit", ""]
    return "\n".join(lines)


def _resolve(verb: str, argv: list[str]) -> tuple[str, str, list[str]]:
    """(display name, "module:function", remaining argv)."""
    if verb in GROUPS:
        if not argv or argv[0] in ("-h", "--help"):
            raise Help(verb)
        sub = argv[0]
        target = GROUPS[verb].get(sub)
        if target is None:
            raise _Unknown(f"{verb} {sub}")
        if ":" not in target:
            target = VERBS[target]
        return f"{verb} {sub}", target, argv[1:]
    if verb not in VERBS:
        raise _Unknown(verb)
    return verb, VERBS[verb], argv


class _Unknown(Exception):
    pass


def main(argv: list[str] | None = None) -> int:
    from dockyard.cli.common import Globals, UsageError, daemon_error, err
    from dockyard.cli.flags import FlagError, parse
    argv = sys.argv[1:] if argv is None else argv
    try:
        gopts, rest = parse(argv, GLOBAL_SPEC, interspersed=False)
    except FlagError as e:
        err(f"{e}\nSee 'dockyard --help'.")
        return 125
    if gopts["help"] or not rest:
        sys.stdout.write(_usage(""))
        return 0
    if gopts["version"]:
        from dockyard import __version__
        sys.stdout.write(f"Dockyard version {__version__}\n")
        return 0
    if gopts["config"]:
        import os
        os.environ["DOCKER_CONFIG"] = gopts["config"]
    verb, args = rest[0], rest[1:]
    if verb == "registry":
        from dockyard.registry.cli import registry
        return registry.main(args, prog_name="dockyard registry", standalone_mode=True) or 0
    if verb == "help":
        sys.stdout.write(_usage(args[0] if args else ""))
        return 0
    g = Globals(gopts["host"][-1] if gopts["host"] else None)
    name = verb
    try:
        name, target, args = _resolve(verb, args)
        mod_name, fn_name = target.split(":")
        mod = __import__(f"dockyard.cli.{mod_name}", fromlist=[fn_name])
        return int(getattr(mod, fn_name)(g, args) or 0)
    except Help as h:
        sys.stdout.write(_usage(h.topic or name))
        return 0
    except _Unknown as u:
        err(f"dockyard: unknown command: dockyard {u}\n\nRun 'dockyard --help' for more information")
        return 1
    except FlagError as e:
        usage = USAGE.get(name.split()[-1], "[OPTIONS]")
        err(f"{e}\n\nUsage:  dockyard {name} {usage}\n\nRun 'dockyard {name} --help' for more information")
        return 125
    except UsageError as e:
        if str(e).startswith("'dockyard"):  # an argument count: docker's layout
            usage = USAGE.get(name.split()[-1], "[OPTIONS]")
            verb_ = "See" if " requires at least " in str(e) and "at most" not in str(e) else "Run"
            err(f"dockyard: {e}\n\nUsage:  dockyard {name} {usage}\n\n{verb_} 'dockyard {name} --help' for more information")
        else:
            err(str(e))
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:
        from dockyard import errors
        if isinstance(e, errors.Unavailable):
            err(str(e))
            return 1
        if isinstance(e, errors.DockyardError):
            daemon_error(e)
            return 1
        if isinstance(e, OSError) and e.filename:
            err(f"{e.filename}: {e.strerror}")
            return 1
        raise


def entry() -> None:
    code = main()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        code = code or 0
    sys.exit(code)


if __name__ == "__main__":
    entry()
