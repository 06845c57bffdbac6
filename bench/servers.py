"""The benchmark's own child processes (SecantusDB, redis-server, ``python server.py``), each pinned
to a CPU core, with the open-file limit raised, and all stopped when the benchmark ends or dies."""

from __future__ import annotations

import ctypes
import os
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tests.servers import free_port, redis_server_binary, wait_port

ROOT = Path(__file__).resolve().parent.parent
PR_SET_PDEATHSIG = 1
CLK_TCK = os.sysconf("SC_CLK_TCK")


def raise_nofile(needed: int) -> int:
    """Raise the soft open-file limit to the hard one (children inherit it); when that is too low,
    the hard one too where this process may (root); else refuse."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, needed * 2)
    if target < needed:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed * 2, needed * 2))
            return needed * 2
        except (OSError, ValueError):
            raise SystemExit(
                f"open-file hard limit {hard} is below the {needed} needed; lower the connections"
            ) from None
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def _in_child(core: int | None) -> None:
    """Runs between fork and exec: die with the benchmark, and stay on the given core."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass
    if core is not None:
        os.sched_setaffinity(0, {core})


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def core_times(core: int) -> tuple[float, float]:
    """(busy, steal) seconds of one CPU from /proc/stat. Busy includes irq and softirq time, which
    the kernel charges to no process: on loopback much of a send's cost is softirq work."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{core} "):
                v = [int(x) for x in line.split()[1:]]
                user, nice, system, _idle, _iowait, irq, softirq, steal = v[:8]
                return (user + nice + system + irq + softirq) / CLK_TCK, steal / CLK_TCK
    return 0.0, 0.0


def all_cpu_seconds() -> dict[int, float]:
    """CPU seconds of every process on the machine, to tell how much else ran during a phase."""
    out: dict[int, float] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                out[int(name)] = cpu_seconds(int(name))
            except (OSError, ValueError, IndexError):
                pass
    return out


def foreign_cpu(before: dict[int, float], after: dict[int, float], ours: set[int]) -> float:
    """CPU seconds used between two snapshots by processes that are not ours (new ones in full)."""
    return sum(
        t - before.get(pid, 0.0) for pid, t in after.items() if pid not in ours and t >= before.get(pid, 0.0)
    )


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    core: int | None
    log: Path
    metrics_port: int | None = None  # an app's METRICS_PORT (bench/pauses.py reads it)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def tail(self, n: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""


@dataclass
class Cluster:
    """Everything one scenario runs on; ``close`` stops it all (idempotent)."""

    core: int | None  # where servers go; None when the machine has a single core
    dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bench-fanout-")))
    children: list[Child] = field(default_factory=list)
    api_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    jwt_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    def _spawn(self, name: str, argv: list[str], port: int, env: dict[str, str] | None = None) -> Child:
        log = self.dir / f"{name}.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                argv,
                env=env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches the benchmark, which stops children in order
                preexec_fn=lambda: _in_child(self.core),
            )
        child = Child(name, proc, port, self.core, log)
        self.children.append(child)
        try:
            wait_port(port, 60, proc)
        except RuntimeError as exc:
            raise RuntimeError(f"{name} did not start: {exc}\n{child.tail()}") from None
        return child

    def start_mongo(self) -> Child:
        port = free_port()
        argv = [sys.executable, "-m", "secantus", "--port", str(port), "--storage-path",
                str(self.dir / "mongo"), "--sync-on-commit", "--log-level", "WARNING"]  # fmt: skip
        return self._spawn("secantus", argv, port)

    def start_redis(self) -> Child:
        port = free_port()
        argv = [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.dir), "--daemonize", "no",
                "--loglevel", "warning", "--maxclients", "10000"]  # fmt: skip
        return self._spawn("redis", argv, port)

    def app_env(self, mongo: Child, redis: Child | None, port: int, outbox_bytes: int) -> dict[str, str]:
        return {
            **os.environ,
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "MONGODB_URL": f"mongodb://127.0.0.1:{mongo.port}/?directConnection=true",
            "MONGODB_DATABASE": "bench",
            "REDIS_URL": f"redis://127.0.0.1:{redis.port}/0" if redis else "",
            "API_KEYS": f"bench:{self.api_key}",
            "JWT_KEYS": f"bench:{self.jwt_key}",
            "PUBLISH_RATE": "0",  # the benchmark publishes as fast as the server takes it
            "LOG_LEVEL": "warning",
            "WS_OUTBOX_BYTES": str(outbox_bytes),
            "DATA_DIR": str(self.dir / "data"),
            # the teardown stops at once (waits 10 s): no drain, no spread closes
            "DRAIN_SECONDS": "0",
            "DRAIN_CLOSE_WINDOW": "0",
        }

    def start_app(
        self,
        name: str,
        mongo: Child,
        redis: Child | None,
        outbox_bytes: int,
        env: dict[str, str] | None = None,
        script: str = "server.py",
        port: int | None = None,
    ) -> Child:
        """``port`` None: a free one (a restart passes the port it had)."""
        port = port or free_port()
        env = {**self.app_env(mongo, redis, port, outbox_bytes), **(env or {}), "PORT": str(port)}
        child = self._spawn(name, [sys.executable, str(ROOT / script)], port, env)
        if env.get("METRICS_PORT"):
            child.metrics_port = int(env["METRICS_PORT"])
            # server.py binds its own port before it starts (the kernel accepts there at once) and
            # opens the metrics listener later: wait for that one too, or the first scrape is refused
            try:
                wait_port(child.metrics_port, 60, child.proc)
            except RuntimeError as exc:
                raise RuntimeError(f"{name}'s metrics did not start: {exc}\n{child.tail()}") from None
        return child

    def start_bare(self, name: str = "bare", port: int | None = None) -> Child:
        """bench/bare_tornado.py, the baseline peer; ``port`` None: a free one (a restart passes
        the port it had)."""
        port = port or free_port()
        env = {**os.environ, "PORT": str(port)}
        return self._spawn(name, [sys.executable, str(ROOT / "bench" / "bare_tornado.py")], port, env)

    def close(self, keep_logs: Path | None = None) -> None:
        """Stop every child; copy their non-empty logs to ``keep_logs`` first if given."""
        for child in reversed(self.children):
            if child.proc.poll() is None:
                child.proc.terminate()
        for child in reversed(self.children):
            try:
                child.proc.wait(10)
            except subprocess.TimeoutExpired:
                child.proc.kill()
                child.proc.wait()
        if keep_logs is not None:
            for child in self.children:
                if child.log.exists() and child.log.stat().st_size:
                    keep_logs.mkdir(parents=True, exist_ok=True)
                    shutil.copy(child.log, keep_logs / child.log.name)
        self.children.clear()
        shutil.rmtree(self.dir, ignore_errors=True)
