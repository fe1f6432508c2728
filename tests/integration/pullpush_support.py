"""What the test_pullpush_* modules take from this folder's conftest.py, loaded by path:
``from conftest import`` picks whichever directory's conftest was imported last when several
test directories are collected."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def _integration_conftest() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_pullpush_conftest", Path(__file__).with_name("conftest.py"))
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


_c = _integration_conftest()
DOCKER, Engine, _start, _teardown, make_image_tar = (_c.DOCKER, _c.Engine, _c._start, _c._teardown,
                                                     _c.make_image_tar)
