"""``--format``: a small subset of Go's text/template, docker's tabwriter and its table mode.

Supported: text and ``{{ pipeline }}`` (``{{-``/``-}}`` trim spaces); operands ``.``,
``.A.B`` (dict keys, or attributes/methods of a row object), ``"str"``, numbers; pipes
``a | f``; functions ``json join lower upper title split len index println printf pad
truncate``; ``{{if}}/{{else}}/{{end}}`` and ``{{range}}...{{end}}``.

``render_rows(fmt, rows, default, headers)`` does what docker's formatter does:
``table``-prefixed formats print a header row and align the tab-separated cells with a
tabwriter (minwidth 10, padding 3); ``json`` means ``{{json .}}``; ``\\t``/``\\n`` written by
the user become real tabs/newlines; one line per row.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any


class TemplateError(Exception):
    pass


_NOVALUE = object()


def go_str(v: Any) -> str:
    """How Go's fmt prints a value decoded from JSON."""
    if v is _NOVALUE:
        return "<no value>"
    if v is None:
        return "<nil>"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e21:
        return str(int(v))
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{go_str(v[k])}" for k in sorted(v)) + "]"
    if isinstance(v, list | tuple):
        return "[" + " ".join(go_str(x) for x in v) + "]"
    return str(v)


def _truthy(v: Any) -> bool:
    return v not in (None, _NOVALUE) and bool(v)


def go_json(v: Any, indent: int | None = None) -> str:
    """JSON as Go's encoding/json writes it: <, >, &, U+2028/9 escaped, other non-ASCII kept."""
    import json
    text = json.dumps(v, separators=(",", ":") if indent is None else (",", ": "), indent=indent,
                      ensure_ascii=False)
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                    ("\u2029", "\\u2029")):
        text = text.replace(ch, esc)
    return text


def _json(v: Any) -> str:
    # docker's template "json" encodes with SetEscapeHTML(false); only `--format json` (below)
    # goes through json.Marshal and escapes <, >, &
    import json
    if hasattr(v, "as_dict"):
        v = v.as_dict()
    return json.dumps(None if v is _NOVALUE else v, separators=(",", ":"), ensure_ascii=False)


def _printf(f: str, *args: Any) -> str:
    return f.replace("%v", "%s").replace("%q", "%r") % tuple(
        a if isinstance(a, int | float) else go_str(a) for a in args)


FUNCS: dict[str, Callable[..., Any]] = {
    "json": _json,
    "join": lambda v, sep: sep.join(go_str(x) for x in (v or [])),
    "lower": lambda s: go_str(s).lower(),
    "upper": lambda s: go_str(s).upper(),
    "title": lambda s: go_str(s).title(),
    "split": lambda s, sep: go_str(s).split(sep),
    "len": lambda v: len(v or ()),
    "index": lambda v, *ks: _index(v, ks),
    "println": lambda *a: " ".join(go_str(x) for x in a) + "\n",
    "print": lambda *a: "".join(go_str(x) for x in a),
    "printf": _printf,
    "pad": lambda s, before, after: " " * int(before) + go_str(s) + " " * int(after),
    "truncate": lambda s, n: go_str(s)[:int(n)],
}


def _index(v: Any, keys: tuple[Any, ...]) -> Any:
    for k in keys:
        try:
            v = v[k]
        except (KeyError, IndexError, TypeError):
            return _NOVALUE
    return v


def _tokens(expr: str) -> list[str]:
    out, i = [], 0
    while i < len(expr):
        c = expr[i]
        if c.isspace():
            i += 1
        elif c == '"':
            j = i + 1
            while j < len(expr) and expr[j] != '"':
                j += 2 if expr[j] == "\\" else 1
            out.append(expr[i:j + 1])
            i = j + 1
        elif c == "`":
            j = expr.index("`", i + 1)
            out.append('"' + expr[i + 1:j].replace("\\", "\\\\").replace('"', '\\"') + '"')
            i = j + 1
        elif c in "|()":
            out.append(c)
            i += 1
        else:
            j = i
            while j < len(expr) and not expr[j].isspace() and expr[j] not in '|()"':
                j += 1
            out.append(expr[i:j])
            i = j
    return out


def _field(dot: Any, path: str) -> Any:
    v = dot
    for part in [p for p in path.split(".") if p]:
        if isinstance(v, dict):
            v = v.get(part, _NOVALUE)
        elif v is None or v is _NOVALUE:
            raise TemplateError(f"template: nil pointer evaluating .{part}")
        elif hasattr(v, part):
            v = getattr(v, part)
        else:
            raise TemplateError(f"template: can't evaluate field {part}")
    return v


class _Ctx:
    def __init__(self, root: Any) -> None:
        self.root = root


def _eval_operand(tok: str, dot: Any, ctx: _Ctx) -> Any:
    if tok.startswith('"'):
        import ast
        return ast.literal_eval(tok)
    if tok.startswith("."):
        return _field(dot, tok)
    if tok.startswith("$"):
        return _field(ctx.root, tok[1:])
    if tok in ("true", "false"):
        return tok == "true"
    if tok == "nil":
        return None
    try:
        return int(tok)
    except ValueError:
        pass
    try:
        return float(tok)
    except ValueError:
        raise TemplateError(f'template: function "{tok}" not defined') from None


def _eval_cmd(toks: list[str], dot: Any, ctx: _Ctx, piped: Any = _NOVALUE) -> Any:
    if not toks:
        raise TemplateError("template: missing value for command")
    # parenthesised sub-pipelines become values first
    args: list[Any] = []
    head = toks[0]
    i = 1
    while i < len(toks):
        t = toks[i]
        if t == "(":
            depth, j = 1, i + 1
            while depth:
                depth += {"(": 1, ")": -1}.get(toks[j], 0)
                j += 1
            args.append(_eval_pipeline(toks[i + 1:j - 1], dot, ctx))
            i = j
        else:
            args.append(_eval_operand(t, dot, ctx))
            i += 1
    if piped is not _NOVALUE:
        args.append(piped)
    if head == "(":
        raise TemplateError("template: unsupported parenthesis position")
    if head in FUNCS:
        return FUNCS[head](*args)
    val = _eval_operand(head, dot, ctx)
    if callable(val):
        return val(*args)
    if args:
        raise TemplateError(f"template: {head} is not a method but has arguments")
    return val


def _eval_pipeline(toks: list[str], dot: Any, ctx: _Ctx) -> Any:
    cmds: list[list[str]] = [[]]
    depth = 0
    for t in toks:
        if t == "|" and depth == 0:
            cmds.append([])
            continue
        depth += {"(": 1, ")": -1}.get(t, 0)
        cmds[-1].append(t)
    val: Any = _NOVALUE
    for n, c in enumerate(cmds):
        val = _eval_cmd(c, dot, ctx, _NOVALUE if n == 0 else val)
    return val


def _parse(src: str) -> list[Any]:
    """Nodes: str | ("expr", toks) | ("if", toks, then, else) | ("range", toks, body)."""
    pieces: list[tuple[str, str]] = []
    i = 0
    while True:
        j = src.find("{{", i)
        if j < 0:
            pieces.append(("text", src[i:]))
            break
        k = src.find("}}", j)
        if k < 0:
            raise TemplateError("template: unclosed action")
        inner = src[j + 2:k]
        text = src[i:j]
        if inner.startswith("-"):
            text = text.rstrip()
            inner = inner[1:]
        trim_after = inner.endswith("-")
        if trim_after:
            inner = inner[:-1]
        pieces.append(("text", text))
        pieces.append(("action", inner.strip()))
        i = k + 2
        if trim_after:
            while i < len(src) and src[i].isspace():
                i += 1
    pos = 0

    def block(stop: tuple[str, ...]) -> tuple[list[Any], str]:
        nonlocal pos
        nodes: list[Any] = []
        while pos < len(pieces):
            kind, val = pieces[pos]
            pos += 1
            if kind == "text":
                if val:
                    nodes.append(val)
                continue
            toks = _tokens(val)
            word = toks[0] if toks else ""
            if word in stop:
                return nodes, word
            if word in ("if", "range", "with"):
                body, end = block(("else", "end"))
                other: list[Any] = []
                if end == "else":
                    other, _ = block(("end",))
                nodes.append((word, toks[1:], body, other))
            elif word.startswith("/*"):
                continue
            else:
                nodes.append(("expr", toks))
        if stop:
            raise TemplateError(f"template: unexpected EOF, expected {{{{{stop[-1]}}}}}")
        return nodes, ""

    nodes, _ = block(())
    return nodes


def _exec(nodes: list[Any], dot: Any, ctx: _Ctx, out: list[str]) -> None:
    for n in nodes:
        if isinstance(n, str):
            out.append(n)
        elif n[0] == "expr":
            out.append(go_str(_eval_pipeline(n[1], dot, ctx)))
        elif n[0] == "if":
            _exec(n[2] if _truthy(_eval_pipeline(n[1], dot, ctx)) else n[3], dot, ctx, out)
        elif n[0] == "with":
            v = _eval_pipeline(n[1], dot, ctx)
            _exec(n[2] if _truthy(v) else n[3], v if _truthy(v) else dot, ctx, out)
        elif n[0] == "range":
            v = _eval_pipeline(n[1], dot, ctx)
            items = list(v.values()) if isinstance(v, dict) else list(v or [])
            if not items:
                _exec(n[3], dot, ctx, out)
            for item in items:
                _exec(n[2], item, ctx, out)


class Template:
    def __init__(self, src: str) -> None:
        self.nodes = _parse(src)

    def render(self, dot: Any) -> str:
        out: list[str] = []
        _exec(self.nodes, dot, _Ctx(dot), out)
        return "".join(out)


def tabwrite(lines: list[str], minwidth: int = 10, padding: int = 3) -> str:
    """Go's text/tabwriter (flags 0, padchar ' '): tab-terminated cells aligned per column block."""
    cells = [line.split("\t") for line in lines]
    out: list[str] = []

    def write(line0: int, line1: int, widths: list[int]) -> None:
        for row in cells[line0:line1]:
            parts = []
            for j, c in enumerate(row):
                parts.append(c.ljust(widths[j]) if j < len(widths) and j < len(row) - 1 else c)
            out.append("".join(parts))

    def fmt(line0: int, line1: int, widths: list[int]) -> None:
        column = len(widths)
        this = line0
        while this < line1:
            if column >= len(cells[this]) - 1:
                this += 1
                continue
            write(line0, this, widths)
            line0 = this
            width = minwidth
            while this < line1 and column < len(cells[this]) - 1:
                width = max(width, len(cells[this][column]) + padding)
                this += 1
            fmt(line0, this, [*widths, width])
            line0 = this
        write(line0, line1, widths)

    fmt(0, len(cells), [])
    return "".join(s + "\n" for s in out)


def render_rows(fmt: str | None, rows: Iterable[Any], default: str, headers: dict[str, str]) -> str:
    """Docker's formatter: ``fmt`` (or the default table) over rows; the text to print."""
    fmt = fmt or default
    if fmt == "json":
        return "".join(go_json(r.as_dict() if hasattr(r, "as_dict") else r) + "\n" for r in rows)
    if fmt == "table":
        fmt = default
    table = fmt.startswith("table")
    body = fmt[5:] if table else fmt
    body = body.strip(" ").replace("\\t", "\t").replace("\\n", "\n")
    tmpl = Template(body)
    lines = [tmpl.render(r) for r in rows]
    if not table:
        return "".join(line + "\n" for line in lines)
    header = tmpl.render(_Header(headers))
    return tabwrite([header, *lines])


class _Header:
    """The header row: each field renders as its column title (docker's HeaderContext)."""

    def __init__(self, headers: dict[str, str]) -> None:
        self._h = headers

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        h = self._h.get(name, name.upper())
        return _HeaderValue(h)


class _HeaderValue(str):
    def __call__(self, *args: Any) -> str:  # {{.Label "x"}} in a header
        return str(self)
