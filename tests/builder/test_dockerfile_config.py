"""Metadata dispatchers: the image config an instruction sequence produces, and history lines."""

from __future__ import annotations

import pytest

from dockyard.builder.config import ConfigBuilder, _duration_text, go_quote_list, run_created_by
from dockyard.builder.expand import expand_instruction
from dockyard.builder.instructions import Arg, Env, parse_dockerfile
from dockyard.builder.scope import StageScope
from dockyard.errors import InvalidArgument

BUSYBOX = {
    "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
    "Cmd": ["sh"],
    "OnBuild": ["RUN echo from-base"],
}


def build(text: str, base: dict | None = None, build_args: dict[str, str] | None = None):
    df = parse_dockerfile("FROM scratch\n" + text)
    scope = StageScope.from_image(build_args or {}, {}, (base or {}).get("Env") or [])
    cb = ConfigBuilder(base)
    history = []
    for i in df.instructions[1:]:
        if isinstance(i, Arg):
            scope.declare(i)
        else:
            i = expand_instruction(i, scope.lookup())
            if isinstance(i, Env):
                scope.set_env(i)
        history.append(cb.apply(i, scope.lookup()))
    return cb, history


def test_acceptance_stage_config() -> None:
    cb, history = build(
        'ENV GREETING=hello\nWORKDIR /app\nCMD ["sh", "-c", "echo $GREETING; pwd"]\n', BUSYBOX
    )
    c = cb.config
    assert c["Env"] == BUSYBOX["Env"] + ["GREETING=hello"]
    assert c["WorkingDir"] == "/app"
    assert c["Cmd"] == ["sh", "-c", "echo $GREETING; pwd"] and c["ArgsEscaped"] is True
    assert "OnBuild" not in c  # the base's triggers ran in this build
    assert history == [
        "ENV GREETING=hello",
        "WORKDIR /app",
        'CMD ["sh" "-c" "echo $GREETING; pwd"]',
    ]
    assert BUSYBOX["OnBuild"] == ["RUN echo from-base"]  # input untouched


def test_shell_forms_use_shell_instruction() -> None:
    cb, history = build('CMD echo hi\nSHELL ["/bin/bash", "-eu", "-c"]\nENTRYPOINT exec top -b\n')
    c = cb.config
    assert c["Cmd"] == ["/bin/sh", "-c", "echo hi"]
    assert c["Entrypoint"] == ["/bin/bash", "-eu", "-c", "exec top -b"]
    assert c["Shell"] == ["/bin/bash", "-eu", "-c"]
    assert history[1] == "SHELL [/bin/bash -eu -c]"


def test_entrypoint_clears_inherited_cmd_but_not_one_set_in_this_build() -> None:
    cb, _ = build('ENTRYPOINT ["top", "-b"]\n', BUSYBOX)
    assert cb.config["Cmd"] is None and cb.config["Entrypoint"] == ["top", "-b"]
    cb, _ = build('CMD ["-c"]\nENTRYPOINT ["top", "-b"]\n', BUSYBOX)
    assert cb.config["Cmd"] == ["-c"]
    cb, _ = build("ENTRYPOINT []\n", BUSYBOX)
    assert cb.config["Entrypoint"] is None
    child = ConfigBuilder({"Cmd": ["x"]}, cmd_set=True).child()
    assert child.cmd_set


def test_env_replaces_in_place_and_labels_overwrite() -> None:
    cb, history = build(
        'ENV A=1 B=2\nENV A=3\nLABEL a=b "c d"="e f"\nLABEL a=z\n', {"Env": ["B=0"]}
    )
    c = cb.config
    assert c["Env"] == [
        "B=2",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "A=3",
    ]
    assert c["Labels"] == {"a": "z", "c d": "e f"}
    assert history[2] == "LABEL a=b c d=e f"


def test_ports_volumes_user_signal_workdir() -> None:
    cb, history = build(
        "EXPOSE 80 443/tcp 53/udp\nVOLUME /data /logs\nUSER 1000:1000\nSTOPSIGNAL SIGINT\n"
        "WORKDIR /a\nWORKDIR b\nWORKDIR ../c\n"
    )
    c = cb.config
    assert c["ExposedPorts"] == {"80/tcp": {}, "443/tcp": {}, "53/udp": {}}
    assert c["Volumes"] == {"/data": {}, "/logs": {}}
    assert (c["User"], c["StopSignal"], c["WorkingDir"]) == ("1000:1000", "SIGINT", "/a/c")
    assert history[0] == "EXPOSE map[443/tcp:{} 53/udp:{} 80/tcp:{}]"
    assert history[1] == "VOLUME [/data /logs]"
    assert history[-1] == "WORKDIR /a/c"


def test_healthcheck_onbuild_maintainer_arg() -> None:
    cb, history = build(
        "HEALTHCHECK --interval=5m --timeout=3s --retries=2 CMD curl -f http://localhost/ || exit 1\n"
        "ONBUILD RUN make\nMAINTAINER someone@example.com\nARG A=1 B\n",
        build_args={"B": "2"},
    )
    c = cb.config
    assert c["Healthcheck"] == {
        "Test": ["CMD-SHELL", "curl -f http://localhost/ || exit 1"],
        "Interval": 300_000_000_000,
        "Timeout": 3_000_000_000,
        "Retries": 2,
    }
    assert history[0] == (
        "HEALTHCHECK {Test:[CMD-SHELL curl -f http://localhost/ || exit 1] Interval:5m0s "
        "Timeout:3s StartPeriod:0s StartInterval:0s Retries:2}"
    )
    assert c["OnBuild"] == ["RUN make"] and history[1] == ""
    assert cb.author == "someone@example.com"
    assert history[3] == "ARG A=1 B=2"
    cb, _ = build("HEALTHCHECK NONE\n", {"Healthcheck": {"Test": ["CMD", "x"]}})
    assert cb.config["Healthcheck"] == {"Test": ["NONE"]}


def test_filesystem_instructions_are_not_handled() -> None:
    cb, history = build("RUN echo\nCOPY a b\nADD c d\n")
    assert history == [None, None, None]
    assert cb.config == {
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    }


def test_bad_values_at_dispatch() -> None:
    with pytest.raises(
        InvalidArgument, match="^dockerfile parse error on line 2: invalid signal: SIGNOPE$"
    ):
        build("STOPSIGNAL SIGNOPE\n")
    with pytest.raises(InvalidArgument, match="invalid containerPort: http"):
        build("EXPOSE http\n")


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0s"),
        (3_000_000_000, "3s"),
        (300_000_000_000, "5m0s"),
        (3_600_000_000_000, "1h0m0s"),
        (90_500_000_000, "1m30.5s"),
        (1_500_000, "1.5ms"),
        (2_000, "2µs"),
        (7, "7ns"),
    ],
)
def test_go_duration_text(ns: int, text: str) -> None:
    assert _duration_text(ns) == text


def test_history_helpers() -> None:
    assert go_quote_list(["/bin/sh", "-c", 'echo "hi"']) == '["/bin/sh" "-c" "echo \\"hi\\""]'
    assert go_quote_list(None) == "[]"
    assert run_created_by(["/bin/sh", "-c", "make"]) == "RUN /bin/sh -c make # buildkit"
    assert run_created_by(["/bin/sh", "-c", "make"], {"A": "1", "B": "2"}) == (
        "RUN |2 A=1 B=2 /bin/sh -c make # buildkit"
    )
