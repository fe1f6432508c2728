"""The Dockerfile front end (pure logic, no I/O beyond reading the context directory).

Pipeline, one module per step::

    text ──parser.parse──▶ Node* ──instructions.from_node──▶ Instruction*     (parse_dockerfile)
         ──stages.plan(build_args, target, platform)──▶ BuildPlan: stages to build, in order
         per stage: scope.StageScope (ARG/ENV in order) + expand.expand_instruction ──▶ values
         values.exposed_ports / parse_signal / parse_chmod at dispatch
    context dir ──dockerignore.load_patterns + walk_context──▶ included files

Modules: ``parser`` (directives, continuations, heredocs, exec/shell form), ``instructions``
(one frozen dataclass per instruction, flag validation, BuildKit's messages), ``mounts``
(``RUN --mount``), ``expand`` (BuildKit's shell lexer), ``scope`` (ARG scoping, platform and
proxy args), ``stages`` (multi-stage resolution, ``--target``, unused stages skipped),
``dockerignore``, ``values``, ``duration``. Every user error is ``errors.InvalidArgument`` whose
message names the Dockerfile line: ``dockerfile parse error on line N: ...``.
"""
