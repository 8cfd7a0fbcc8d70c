"""The .rpm (`make rpm`): built on Debian with rpmbuild, so it is inspected and unpacked here
rather than installed (this machine has no RPM database to install into)."""

from __future__ import annotations

import filecmp
import platform
import subprocess
from pathlib import Path

import pytest

from centrifugo_fast._version import __version__
from centrifugo_fast.cli import _TWIN_SELECTORS
from tests.packaging.helpers import artifact, tool, twins_of
from tests.serverproc import ROOT

NAME = "centrifugo-fast"


@pytest.fixture(scope="module")
def rpm() -> Path:
    return artifact(f"{NAME}-{__version__}-*.rpm")


def _query(rpm: Path, *args: str) -> str:
    return subprocess.run(
        [tool("rpm"), "-qp", *args, str(rpm)], capture_output=True, text=True, check=True
    ).stdout


def test_header(rpm: Path) -> None:
    header = _query(rpm, "--queryformat", "%{NAME} %{VERSION} %{RELEASE} %{ARCH} %{LICENSE}")
    assert header == f"{NAME} {__version__} 1 {platform.machine()} MIT"
    requires = _query(rpm, "--requires").split("\n")
    # the bundle's own libpython/OpenSSL must not become requirements nobody provides
    assert not [r for r in requires if ".so" in r and not r.startswith("rpmlib(")], requires
    assert any(r.startswith("shadow-utils") for r in requires)
    assert any(r.startswith("glibc >= 2.") for r in requires), requires


def test_files_config_and_ownership(rpm: Path) -> None:
    files = _query(rpm, "--list").split()
    for path in [
        "/usr/bin/centrifugo-fast",
        "/usr/lib/centrifugo-fast/centrifugo-fast",
        "/usr/lib/systemd/system/centrifugo-fast.service",
        "/etc/centrifugo-fast/config.json",
        "/var/lib/centrifugo-fast",
    ]:
        assert path in files, path
    assert _query(rpm, "--configfiles").split() == ["/etc/centrifugo-fast/config.json"]
    modes = _query(
        rpm, "--queryformat", "[%{FILEMODES:perms} %{FILEUSERNAME} %{FILEGROUPNAME} %{FILENAMES}\n]"
    )
    by_path = {line.split()[3]: line.split()[:3] for line in modes.splitlines()}
    assert by_path["/etc/centrifugo-fast/config.json"] == ["-rw-r-----", "root", NAME]
    assert by_path["/var/lib/centrifugo-fast"] == ["drwxr-x---", NAME, NAME]
    assert by_path["/usr/lib/centrifugo-fast/centrifugo-fast"][1:] == ["root", "root"]


def test_scriptlets(rpm: Path, tmp_path: Path) -> None:
    scripts = _query(rpm, "--scripts")
    assert "preinstall scriptlet" in scripts and "useradd --system" in scripts
    assert "postinstall scriptlet" in scripts and "systemctl preset" in scripts
    assert "preuninstall scriptlet" in scripts and "disable --now" in scripts
    for tag in ("PREIN", "POSTIN", "PREUN", "POSTUN"):
        body = _query(rpm, "--queryformat", f"%{{{tag}}}")
        script = tmp_path / tag
        script.write_text(body)
        result = subprocess.run(
            [tool("shellcheck"), "--shell=sh", str(script)], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout


def test_unpacked_command_runs_the_compiled_twins(rpm: Path, tmp_path: Path) -> None:
    payload = subprocess.run([tool("rpm2cpio"), str(rpm)], capture_output=True, check=True).stdout
    subprocess.run([tool("cpio"), "-idm", "--quiet"], input=payload, cwd=tmp_path, check=True)
    command = tmp_path / "usr" / "bin" / NAME
    assert command.is_symlink()
    twins = twins_of([str(command)], CENTRIFUGO_FAST_REQUIRE_EXTENSIONS="1")
    assert twins == dict.fromkeys(_TWIN_SELECTORS, "compiled")
    unit = tmp_path / "usr" / "lib" / "systemd" / "system" / f"{NAME}.service"
    assert filecmp.cmp(unit, ROOT / "deploy" / f"{NAME}.service", shallow=False)
