"""A fake ``docker-credential-<name>`` program for tests (a fake of an external program).

It speaks the credential-helper protocol (get/store/erase/list, data on stdin, JSON on stdout,
"credentials not found in native keychain" with exit status 1) and keeps its secrets in a
JSON file next to it; every call is appended to ``<db>.log`` as ``<verb> <server>``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

_SCRIPT = '''#!{python}
import json, os, sys
db = {db!r}
verb = sys.argv[1]
data = json.load(open(db)) if os.path.exists(db) else {{}}
raw = sys.stdin.read()
if {fail!r}:
    sys.stderr.write("the keychain is locked\\n")
    sys.exit(3)
key = json.loads(raw)["ServerURL"] if verb == "store" else raw.strip()
with open(db + ".log", "a") as f:
    f.write(verb + " " + key + "\\n")
if verb == "get":
    if key not in data:
        print("credentials not found in native keychain")
        sys.exit(1)
    print(json.dumps(dict(ServerURL=key, **data[key])))
elif verb == "store":
    d = json.loads(raw)
    data[key] = dict(Username=d["Username"], Secret=d["Secret"])
elif verb == "erase":
    if key not in data:
        print("credentials not found in native keychain")
        sys.exit(1)
    del data[key]
elif verb == "list":
    print(json.dumps({{k: v["Username"] for k, v in data.items()}}))
with open(db + ".tmp", "w") as f:
    json.dump(data, f)
os.replace(db + ".tmp", db)
'''


class FakeHelper:
    def __init__(self, bindir: Path, name: str, fail: bool = False) -> None:
        self.name = name
        self.db = bindir / f"{name}-secrets.json"
        self.log = Path(f"{self.db}.log")
        prog = bindir / f"docker-credential-{name}"
        prog.write_text(_SCRIPT.format(python=sys.executable, db=str(self.db), fail=fail))
        prog.chmod(0o755)

    def secrets(self) -> dict[str, dict[str, str]]:
        return json.loads(self.db.read_text()) if self.db.exists() else {}

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def seed(self, key: str, user: str, secret: str) -> None:
        data = self.secrets()
        data[key] = {"Username": user, "Secret": secret}
        self.db.write_text(json.dumps(data))
