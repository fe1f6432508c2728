"""The Dockerfile front end (pure logic, no I/O beyond reading the context directory).

Pipeline, one module per step::

    text ──parser.parse──▶ Node* ──instructions.from_node──▶ Instruction*     (parse_dockerfile)
         ──stages.plan(build_args, target, platform)──▶ BuildPlan: stages to build, in order
         per stage, per instruction: ARG ─▶ scope.StageScope.declare; others ─▶
         expand.expand_instruction(instr, scope.lookup()) ─▶ (ENV: scope.set_env)
         ─▶ config.ConfigBuilder.apply (metadata: image config + history line)
            or the executor (RUN: Run.script(), scope.run_env(); COPY/ADD)
    context dir ──dockerignore.load_patterns + walk_context──▶ included files

Modules: ``parser`` (directives, continuations, heredocs, exec/shell form), ``instructions``
(one frozen dataclass per instruction, flag validation, BuildKit's messages), ``mounts``
(``RUN --mount``), ``flags`` (builder flags), ``expand`` (BuildKit's shell lexer), ``scope``
(ARG scoping, platform and proxy args), ``stages`` (multi-stage resolution, ``--target``,
unused stages skipped), ``config`` (metadata dispatchers), ``dockerignore``, ``values``
(ports, signals, chmod, WORKDIR), ``duration``, ``suggest``. Every user error is
``errors.InvalidArgument`` whose message names the Dockerfile line:
``dockerfile parse error on line N: ...``.

The executor (Dockerfile + context -> image, through the image store and the OCI runtime):
``executor`` (the loop, docker's classic-builder JSON messages), ``context`` (the build
context: a client's tar read once into an index + spool, or a directory), ``cache`` (content
keyed step cache, SQLite), ``steps.run`` (RUN in a container), ``forkserver`` (the runtime,
pre-forked for RUN), ``steps.copy`` (COPY/ADD into a rootfs), ``cancel``; symlink resolution
that cannot leave a root is ``dockyard.linux.pathres``.
"""
