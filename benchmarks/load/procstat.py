"""Resource use of the server under test (from /proc) and of the generator itself."""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def _listen_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(inode)
    return inodes


def pid_listening_on(port: int) -> int | None:
    """The pid of the process holding a listening socket on `port`, if visible to us."""
    wanted = {f"socket:[{inode}]" for inode in _listen_inodes(port)}
    if not wanted:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in wanted:
                    return int(proc.name)
        except OSError:
            continue
    return None


def rss_bytes(pid: int) -> int:
    """Resident set size of `pid`."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def own_cpu_seconds() -> float:
    """User + system CPU time of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True, slots=True)
class Usage:
    """What a CpuWindow measured."""

    seconds: float
    server_cpu: float | None
    generator_cpu: float


@dataclass(slots=True)
class CpuWindow:
    """CPU use of the server and of the generator over a wall-clock window."""

    server_pid: int | None
    _wall: float = 0.0
    _server: float = 0.0
    _own: float = 0.0

    def start(self) -> None:
        """Open the window."""
        self._wall = time.monotonic()
        self._own = own_cpu_seconds()
        self._server = cpu_seconds(self.server_pid) if self.server_pid else 0.0

    def stop(self) -> Usage:
        """Close the window: wall seconds and each side's CPU as a fraction of one core."""
        wall = time.monotonic() - self._wall
        own = (own_cpu_seconds() - self._own) / wall
        server = (cpu_seconds(self.server_pid) - self._server) / wall if self.server_pid else None
        return Usage(wall, server, own)


def raise_fd_limit() -> int:
    """Raise this process's open-file limit to its hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard
