"""The .deb (`make deb`): installs with dpkg on this machine, its command serves clients, and
a purge leaves the machine as it was. Needs root (CI runs as root)."""

from __future__ import annotations

import grp
import json
import os
import pwd
import stat
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from centrifugo_fast._version import __version__
from centrifugo_fast.cli import _TWIN_SELECTORS
from tests.packaging.helpers import artifact, sdk_roundtrip, tool, twins_of
from tests.serverproc import BASE_CONFIG, ServerProcess, free_port, require

NAME = "centrifugo-fast"
CONFIG = Path("/etc/centrifugo-fast/config.json")
UNIT = Path("/usr/lib/systemd/system/centrifugo-fast.service")
WANTS = Path("/etc/systemd/system/multi-user.target.wants/centrifugo-fast.service")
#: everything the package may leave on the machine while installed
FOOTPRINT = [Path("/usr/bin/centrifugo-fast"), Path("/usr/lib/centrifugo-fast"), UNIT]
LEFTOVERS = [CONFIG.parent, Path("/var/lib/centrifugo-fast"), Path("/var/log/centrifugo-fast")]
#: run a command as the service user, like systemd's User=/Group= (exec, so signals reach it)
AS_SERVICE_USER = ["setpriv", f"--reuid={NAME}", f"--regid={NAME}", "--init-groups"]


@pytest.fixture(scope="module")
def deb() -> Path:
    return artifact(f"{NAME}_{__version__}-*.deb")


def _dpkg(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["dpkg", *args], capture_output=True, text=True, timeout=120)


def _installed() -> bool:
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", NAME], capture_output=True, text=True
    )
    return result.returncode == 0 and "installed" in result.stdout.split()


def _user_exists() -> bool:
    try:
        pwd.getpwnam(NAME)
    except KeyError:
        return False
    return True


@pytest.fixture(scope="module")
def installed(deb: Path) -> Iterator[None]:
    require(os.geteuid() == 0, "installing the .deb needs root")
    # A run that was killed half-way may have left the package behind.
    _dpkg("--purge", NAME)
    result = _dpkg("-i", str(deb))
    assert result.returncode == 0, result.stdout + result.stderr
    try:
        yield
    finally:
        if _installed() or _user_exists():
            _dpkg("--purge", NAME)


def test_package_metadata(deb: Path) -> None:
    fields = subprocess.run(
        ["dpkg-deb", "-f", str(deb), "Package", "Version", "Depends", "Architecture"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"Package: {NAME}" in fields and f"Version: {__version__}-1" in fields
    assert "libc6 (>=" in fields and "passwd" in fields
    listing = subprocess.run(
        ["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True
    ).stdout
    for path in [
        "./usr/bin/centrifugo-fast",
        f".{UNIT}",
        f".{CONFIG}",
        "./usr/lib/centrifugo-fast/",
    ]:
        assert path in listing, path
    # every file belongs to root: nothing of the build machine's users leaks in
    assert all(" root/root " in line for line in listing.splitlines()), listing[:500]
    conffiles = subprocess.run(
        ["dpkg-deb", "-I", str(deb), "conffiles"], capture_output=True, text=True, check=True
    ).stdout
    assert conffiles.split() == [str(CONFIG)]


def test_maintainer_scripts_pass_shellcheck() -> None:
    scripts = sorted((Path(__file__).parents[2] / "deploy" / "debian").iterdir())
    assert [p.name for p in scripts] == ["postinst", "postrm", "prerm"]
    result = subprocess.run(
        [tool("shellcheck"), "--shell=sh", *map(str, scripts)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout


def test_install_creates_the_user_and_protects_the_config(installed: None) -> None:
    user = pwd.getpwnam(NAME)
    assert user.pw_uid < 1000 and user.pw_shell == "/usr/sbin/nologin"
    assert grp.getgrgid(user.pw_gid).gr_name == NAME
    info = CONFIG.stat()
    assert stat.S_IMODE(info.st_mode) == 0o640
    assert (info.st_uid, grp.getgrgid(info.st_gid).gr_name) == (0, NAME)
    state = Path(user.pw_dir)
    assert state == Path("/var/lib/centrifugo-fast") and state.stat().st_uid == user.pw_uid
    conffiles = subprocess.run(
        ["dpkg-query", "-W", "-f=${Conffiles}", NAME], capture_output=True, text=True, check=True
    ).stdout
    assert str(CONFIG) in conffiles
    # enabled the Debian way even though systemd is not running here
    assert WANTS.is_symlink()


def test_the_unit_verifies(installed: None) -> None:
    result = subprocess.run(
        [tool("systemd-analyze"), "verify", str(UNIT)], capture_output=True, text=True
    )
    # systemd-analyze may comment on other units of the machine; none on ours.
    assert result.returncode == 0, result.stdout + result.stderr
    assert NAME not in result.stdout + result.stderr


def test_the_installed_command_runs_the_compiled_twins(installed: None) -> None:
    twins = twins_of(
        [*AS_SERVICE_USER, "/usr/bin/centrifugo-fast"], CENTRIFUGO_FAST_REQUIRE_EXTENSIONS="1"
    )
    assert twins == dict.fromkeys(_TWIN_SELECTORS, "compiled")


def test_the_packaged_config_starts_as_the_service_user(installed: None) -> None:
    # What the unit runs (ExecStart with User=), on a free port; the packaged config has no
    # secrets yet, so the API refuses requests, but the server is up and /health answers.
    port = free_port()
    proc = subprocess.Popen(
        [
            *AS_SERVICE_USER,
            "/usr/bin/centrifugo-fast",
            "--config",
            str(CONFIG),
            "-a",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        body = _get_when_up(f"http://127.0.0.1:{port}/health", proc)
        assert json.loads(body) == {}
    finally:
        proc.terminate()
        output = proc.communicate(timeout=15)[0].decode()
    assert proc.returncode == 0, output
    assert "http_api.key is empty" in output


def _get_when_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> bytes:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                body: bytes = response.read()
                return body
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_the_installed_command_serves_an_sdk_client(installed: None) -> None:
    server = ServerProcess(BASE_CONFIG, command=[*AS_SERVICE_USER, "/usr/bin/centrifugo-fast"])
    # The service user reads the test config the way it reads /etc/centrifugo-fast.
    server.config_path.parent.chmod(0o755)
    server.config_path.chmod(0o644)
    server.start()
    try:
        sdk_roundtrip(server)
        assert server.stop() == 0
    finally:
        server.close()


def test_remove_keeps_the_config_and_purge_removes_everything(installed: None) -> None:
    result = _dpkg("--remove", NAME)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not any(path.exists() for path in FOOTPRINT)
    assert CONFIG.is_file() and _user_exists()
    result = _dpkg("--purge", NAME)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not _installed()
    assert not _user_exists()
    assert not any(path.exists() for path in FOOTPRINT + LEFTOVERS)
    assert not WANTS.is_symlink()
    masked = Path("/etc/systemd/system/centrifugo-fast.service")
    assert not masked.exists() and not masked.is_symlink()
