"""Inside the venv the built wheel was installed into (dev/run_wheel_tests.py runs this with a
copy of tests/ outside the source tree): the package under test is the installed one."""

from __future__ import annotations

import importlib
import os
import shutil
import sys
from pathlib import Path

import centrifugo_fast
from centrifugo_fast import twins
from centrifugo_fast.cli import _TWIN_SELECTORS
from tests.packaging.helpers import ADMIN_CONFIG, admin_page, sdk_roundtrip, twins_of
from tests.serverproc import BASE_CONFIG, ROOT, ServerProcess, merge

EXPECT = os.environ.get("CENTRIFUGO_FAST_EXPECT_TWINS", "")
PACKAGE = Path(centrifugo_fast.__file__).resolve().parent


def test_the_installed_package_is_the_one_imported() -> None:
    print(f"centrifugo_fast imported from {PACKAGE}")
    assert "site-packages" in PACKAGE.parts
    assert Path(sys.prefix).resolve() in PACKAGE.parents
    # The tests are a copy without the sources next to them.
    assert not (ROOT / "centrifugo_fast").exists()
    # No other copy of the package is importable from sys.path (e.g. the source tree).
    for entry in sys.path:
        if (Path(entry or ".") / "centrifugo_fast").is_dir():
            assert Path(entry or ".").resolve() == PACKAGE.parent, entry


def test_the_expected_twins_are_loaded() -> None:
    assert EXPECT in ("compiled", "pure")
    for selector in _TWIN_SELECTORS:
        importlib.import_module(f"centrifugo_fast.{selector}")
    loaded = {selector: twins.LOADED[selector] for selector in _TWIN_SELECTORS}
    assert loaded == dict.fromkeys(_TWIN_SELECTORS, "c" if EXPECT == "compiled" else "py")
    extensions = sorted(p.name for p in PACKAGE.rglob("*") if p.suffix in (".so", ".pyd"))
    if EXPECT == "compiled":
        assert len(extensions) == len(_TWIN_SELECTORS), extensions
        for selector in _TWIN_SELECTORS:
            module = sys.modules[f"centrifugo_fast.{selector}"]
            implementation = module._impl
            assert twins.is_compiled(implementation)
            assert PACKAGE in Path(implementation.__file__).resolve().parents
    else:
        assert extensions == []


def test_the_console_script_reports_the_twins() -> None:
    # The venv's own script (bin/centrifugo-fast, or Scripts\\centrifugo-fast.exe on Windows).
    script = shutil.which("centrifugo-fast", path=str(Path(sys.executable).parent))
    assert script is not None
    assert twins_of([script]) == dict.fromkeys(_TWIN_SELECTORS, EXPECT)


def test_package_data_is_installed() -> None:
    from centrifugo_fast.admin.http import _load_assets
    from centrifugo_fast.engine.redis import scripts

    assert {"index.html", "app.js", "app.css"} <= set(_load_assets())
    assert all(script.source.strip() for script in scripts.ALL)
    assert (PACKAGE / "py.typed").is_file()


def test_serves_an_sdk_client_without_uvloop() -> None:
    # What Windows gets: no uvloop, asyncio's default loop (and its signal fallback).
    code = (
        "import sys; sys.modules['uvloop'] = None\n"
        "from centrifugo_fast.cli import main\n"
        "sys.exit(main())"
    )
    server = ServerProcess(
        merge(BASE_CONFIG, ADMIN_CONFIG), command=[sys.executable, "-c", code]
    ).start()
    try:
        sdk_roundtrip(server)
        assert "<html" in admin_page(server).lower()
        exit_code = server.stop()
        # Windows has no SIGTERM to send: Popen.send_signal terminates the process there.
        assert exit_code == 0 or sys.platform == "win32"
    finally:
        server.close()
