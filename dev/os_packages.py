"""Build the .deb and .rpm packages from the PyInstaller folder build (`make deb`, `make rpm`).

    python dev/os_packages.py deb BUNDLE_DIR OUT_DIR
    python dev/os_packages.py rpm BUNDLE_DIR OUT_DIR

The payload is the self-contained PyInstaller folder (its own Python and libraries, so the
packages need no system Python and work the same on every distribution release):

    /usr/lib/centrifugo-fast/                     the bundle
    /usr/bin/centrifugo-fast                      symlink to the bundle's executable
    /usr/lib/systemd/system/centrifugo-fast.service
    /etc/centrifugo-fast/config.json              configuration file (kept on upgrade/remove)
    /usr/share/doc/centrifugo-fast/README.md

Maintainer scripts (deploy/debian/, and the %pre/%post sections of deploy/rpm/) create the
`centrifugo-fast` system user and enable the unit. .deb: dpkg-deb; .rpm: rpmbuild (Debian's
`rpm` package), which packs the staged tree without building anything.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
NAME = "centrifugo-fast"
RELEASE = "1"
DESCRIPTION = """\
Real-time messaging server that speaks Centrifugo's protocols
 centrifugo-fast serves WebSocket, SSE and HTTP-streaming clients written for
 Centrifugo (centrifuge-js, centrifuge-python, cent) from a Python server with
 compiled hot paths. This package installs a self-contained build (no system
 Python needed), a systemd unit, a default configuration in /etc/centrifugo-fast/
 and the centrifugo-fast system user."""


def version() -> str:
    text = (ROOT / "centrifugo_fast" / "_version.py").read_text()
    match = re.search(r'__version__ = "([^"]+)"', text)
    if match is None:
        raise SystemExit("no __version__ in centrifugo_fast/_version.py")
    return match.group(1)


def stage(bundle: Path, root: Path) -> None:
    """Lay out the installed file tree under `root`."""
    if not (bundle / NAME).is_file():
        raise SystemExit(f"{bundle} is not the PyInstaller folder build (no {NAME} in it)")
    lib = root / "usr" / "lib" / NAME
    shutil.copytree(bundle, lib, symlinks=True)
    (root / "usr" / "bin").mkdir(parents=True)
    # Relative, so the tree stays valid wherever it is unpacked (tests extract the .rpm).
    (root / "usr" / "bin" / NAME).symlink_to(f"../lib/{NAME}/{NAME}")
    units = root / "usr" / "lib" / "systemd" / "system"
    units.mkdir(parents=True)
    shutil.copy(DEPLOY / f"{NAME}.service", units / f"{NAME}.service")
    etc = root / "etc" / NAME
    etc.mkdir(parents=True)
    shutil.copy(DEPLOY / "config.json", etc / "config.json")
    doc = root / "usr" / "share" / "doc" / NAME
    doc.mkdir(parents=True)
    shutil.copy(ROOT / "README.md", doc / "README.md")
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        if path.is_dir():
            path.chmod(0o755)
        elif path.stat().st_mode & 0o111:
            path.chmod(0o755)
        else:
            path.chmod(0o644)


def glibc_floor(bundle: Path) -> str:
    """The newest GLIBC symbol version any ELF file of the bundle needs (for Depends)."""
    newest = (2, 17)
    for path in bundle.rglob("*"):
        if not path.is_file() or path.is_symlink():
            continue
        with path.open("rb") as f:
            if f.read(4) != b"\x7fELF":
                continue
        dump = subprocess.run(
            ["objdump", "-T", str(path)], capture_output=True, text=True, check=True
        ).stdout
        for major, minor in re.findall(r"GLIBC_(\d+)\.(\d+)", dump):
            newest = max(newest, (int(major), int(minor)))
    return f"{newest[0]}.{newest[1]}"


def build_deb(bundle: Path, out: Path, work: Path) -> Path:
    root = work / "deb"
    stage(bundle, root)
    control_dir = root / "DEBIAN"
    control_dir.mkdir()
    arch = subprocess.run(
        ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True
    ).stdout.strip()
    size_kib = sum(p.lstat().st_size for p in root.rglob("*")) // 1024 + 1
    control = f"""\
Package: {NAME}
Version: {version()}-{RELEASE}
Architecture: {arch}
Maintainer: centrifugo-fast developers <centrifugo-fast@users.noreply.github.com>
Installed-Size: {size_kib}
Depends: libc6 (>= {glibc_floor(bundle)}), passwd
Section: net
Priority: optional
Description: {DESCRIPTION}
"""
    (control_dir / "control").write_text(control)
    # dpkg keeps a changed conffile on upgrade and removes it only on purge.
    (control_dir / "conffiles").write_text(f"/etc/{NAME}/config.json\n")
    for script in ("postinst", "prerm", "postrm"):
        shutil.copy(DEPLOY / "debian" / script, control_dir / script)
        (control_dir / script).chmod(0o755)
    target = out / f"{NAME}_{version()}-{RELEASE}_{arch}.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(root), str(target)],
        check=True,
    )
    return target


def build_rpm(bundle: Path, out: Path, work: Path) -> Path:
    root = work / "rpm-root"
    stage(bundle, root)
    (root / "var" / "lib" / NAME).mkdir(parents=True)
    top = work / "rpmbuild"
    arch = os.uname().machine
    subprocess.run(
        [
            "rpmbuild",
            "-bb",
            "--quiet",
            "--target",
            arch,
            "--define",
            f"_topdir {top}",
            "--define",
            f"_rpmdir {out}",
            "--define",
            "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm",
            "--define",
            f"payload {root}",
            "--define",
            f"pkg_version {version()}",
            "--define",
            f"pkg_release {RELEASE}",
            "--define",
            f"glibc_floor {glibc_floor(bundle)}",
            str(DEPLOY / "rpm" / f"{NAME}.spec"),
        ],
        check=True,
    )
    return out / f"{NAME}-{version()}-{RELEASE}.{arch}.rpm"


def main() -> int:
    parser = argparse.ArgumentParser(description="Build the .deb or .rpm package.")
    parser.add_argument("kind", choices=("deb", "rpm"))
    parser.add_argument("bundle", type=Path, help="the PyInstaller folder build")
    parser.add_argument("out", type=Path, help="where the package goes")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cf-fast-pkg-") as tmp:
        build = build_deb if args.kind == "deb" else build_rpm
        target = build(args.bundle.resolve(), args.out.resolve(), Path(tmp))
    print(
        f"{target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}: "
        f"{target.stat().st_size / 2**20:.1f} MiB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
