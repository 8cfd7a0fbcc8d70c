"""Real redis-server / redis-sentinel processes on free loopback ports, for tests."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.serverproc import free_port, require

REDIS_SERVER = shutil.which("redis-server")
REDIS_SENTINEL = shutil.which("redis-sentinel")
REDIS_CLI = shutil.which("redis-cli")


def require_redis(*, sentinel: bool = False) -> None:
    """Skip locally, fail in CI, when the Redis binaries are missing."""
    require(REDIS_SERVER is not None, "redis-server is not installed")
    require(REDIS_CLI is not None, "redis-cli is not installed")
    if sentinel:
        require(REDIS_SENTINEL is not None, "redis-sentinel is not installed")


def command(port: int, *args: str | int, timeout: float = 5.0) -> Any:
    """One command over a plain socket (RESP2); returns the decoded reply."""
    parts = [str(a).encode() for a in args]
    payload = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(payload)
        reader = sock.makefile("rb")
        return _read(reader)


def _read(reader: Any) -> Any:
    line = reader.readline()
    if not line:
        raise ConnectionError("connection closed")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RuntimeError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        if size < 0:
            return None
        data: bytes = reader.read(size + 2)[:-2]
        return data
    if kind == b"*":
        size = int(rest)
        return None if size < 0 else [_read(reader) for _ in range(size)]
    raise RuntimeError(f"bad reply {line!r}")


class RedisProcess:
    """One redis-server (or redis-sentinel) process; can be stopped and started again."""

    def __init__(
        self,
        *args: str,
        port: int | None = None,
        sentinel: bool = False,
        config: str = "",
        cpus: set[int] | None = None,
    ) -> None:
        self.port = port or free_port()
        self._tmp = tempfile.TemporaryDirectory(prefix="cf-redis-")
        self.dir = Path(self._tmp.name)
        self.args = list(args)
        self.sentinel = sentinel
        self.config_text = config
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.dir / "redis.log"
        #: Pin the process to these CPUs (benchmarks).
        self.cpus = cpus

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> RedisProcess:
        binary = REDIS_SENTINEL if self.sentinel else REDIS_SERVER
        assert binary is not None
        cmd = [binary]
        if self.config_text or self.sentinel:
            conf = self.dir / "redis.conf"
            if not conf.exists():  # Sentinel rewrites its file: keep it across restarts
                conf.write_text(self.config_text)
            cmd.append(str(conf))
        cmd += [
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.dir),
            "--logfile",
            str(self.log_path),
            "--daemonize",
            "no",
        ]
        if not self.sentinel:
            cmd += ["--save", ""]
            if "--appendonly" not in self.args:
                cmd += ["--appendonly", "no"]
        cmd += self.args
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        if self.cpus:
            os.sched_setaffinity(self.proc.pid, self.cpus)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis exited with {self.proc.returncode}: {self.log()}")
            try:
                if command(self.port, "PING", timeout=0.5) == "PONG":
                    return self
            except (OSError, RuntimeError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"redis on {self.port} did not start: {self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def cmd(self, *args: str | int) -> Any:
        return command(self.port, *args)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the process (SIGKILL: crash; SIGTERM: shutdown)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def close(self) -> None:
        self.stop(signal.SIGKILL)
        self._tmp.cleanup()


def free_cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too."""
    while True:
        port = free_port()
        if port > 55535:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


def sentinel_config(master_port: int, quorum: int = 2) -> str:
    return (
        f"sentinel monitor mymaster 127.0.0.1 {master_port} {quorum}\n"
        "sentinel down-after-milliseconds mymaster 1000\n"
        "sentinel failover-timeout mymaster 5000\n"
        "sentinel parallel-syncs mymaster 1\n"
    )


def create_cluster(nodes: list[RedisProcess], timeout: float = 20.0) -> None:
    """`redis-cli --cluster create` over the nodes (masters only), then wait until it is ok."""
    assert REDIS_CLI is not None
    subprocess.run(
        [REDIS_CLI, "--cluster", "create", *(n.address for n in nodes)]
        + ["--cluster-replicas", "0", "--cluster-yes"],
        check=True,
        capture_output=True,
        timeout=timeout,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        infos = [n.cmd("CLUSTER", "INFO") for n in nodes]
        if all(b"cluster_state:ok" in info for info in infos):
            return
        time.sleep(0.1)
    raise RuntimeError("cluster did not become ok")
