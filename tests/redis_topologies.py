"""Real Redis topologies for the tests, each on free ports and stopped by ``close``:
a three-master Redis Cluster, and a Sentinel service (a primary, a replica and three sentinels)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.servers import RedisServer, free_port, redis_server_binary

DEADLINE = 60.0  # the longest a topology takes to form on a busy machine (a hang guard)


def redis_cli(port: int, *args: str, timeout: float = 10) -> str:
    done = subprocess.run(
        [shutil.which("redis-cli") or "redis-cli", "-h", "127.0.0.1", "-p", str(port), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return done.stdout


def _wait(what: str, check: object, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not reached within {timeout:g} s")
        time.sleep(0.1)


def _server(root: Path, *args: str, sentinel_config: str | None = None) -> RedisServer:
    """A redis-server (or sentinel) with its own directory under ``root``."""
    return RedisServer(*args, directory=tempfile.mkdtemp(dir=root), sentinel_config=sentinel_config)


def _in_sync(port: int) -> bool:
    """A replica whose link to its primary is up: its first sync is done."""
    return "master_link_status:up" in redis_cli(port, "info", "replication")


def _cluster_ok(port: int) -> bool:
    return "cluster_state:ok" in redis_cli(port, "cluster", "info")


class RedisClusterTopology:
    """Three masters, every slot assigned (``redis-cli --cluster create``), and ``replicas`` replicas
    per master (a killed master's replica takes over after ``cluster-node-timeout``, 2 s)."""

    def __init__(self, masters: int = 3, replicas: int = 0) -> None:
        self.masters, self.replicas = masters, replicas
        self.root = Path(tempfile.mkdtemp(prefix="test-redis-cluster-"))
        # The bus port defaults to port + 10000, past 65535 for a high free port: pick it too.
        self.nodes = [
            _server(
                self.root,
                "--cluster-enabled",
                "yes",
                "--cluster-port",
                str(free_port()),
                "--cluster-node-timeout",
                "2000",
            )
            for _ in range(masters * (1 + replicas))
        ]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def start(self) -> None:
        version = subprocess.run(
            [redis_server_binary(), "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
        major = version.partition(" v=")[2].partition(".")[0]
        if not major.isdigit() or int(major) < 7:
            raise RuntimeError(f"sharded pub/sub needs redis-server 7 or later (make system-deps): {version}")
        for node in self.nodes:
            node.start()
        addresses = [f"127.0.0.1:{n.port}" for n in self.nodes]
        created = subprocess.run(
            [shutil.which("redis-cli") or "redis-cli", "--cluster", "create", *addresses, "--cluster-yes"]
            + ["--cluster-replicas", str(self.replicas)],
            capture_output=True,
            text=True,
            timeout=DEADLINE,
            check=False,
        )
        if created.returncode != 0:
            output = created.stdout + created.stderr
            raise RuntimeError("redis-cli --cluster create failed: " + output[-2000:])
        self.wait_ok()
        # A replica that has not finished its first sync refuses to take over (its data is too old),
        # and the first sync waits for repl-diskless-sync-delay: a master killed before then stays dead.
        expected = len(self.nodes) - self.masters
        _wait("replicas in sync", lambda: sum(_in_sync(n.port) for n in self.nodes) == expected)

    def owner(self, shard_channel: str) -> RedisServer:
        """The master serving ``shard_channel``'s subscribers."""
        return next(n for n in self.nodes if shard_channel in redis_cli(n.port, "pubsub", "shardchannels"))

    def wait_ok(self) -> None:
        """Until every live node says the cluster serves all slots again."""
        for node in self.nodes:
            if node.proc is not None:
                _wait("cluster_state:ok", lambda n=node: _cluster_ok(n.port))

    def close(self) -> None:
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class SentinelTopology:
    """A primary, its replica and three sentinels watching them as service ``SERVICE``; a killed
    primary is replaced a few seconds later (``down-after-milliseconds`` 2000, then the election)."""

    SERVICE = "webinar"

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="test-redis-sentinel-"))
        self.primary = _server(self.root)
        self.replica = _server(self.root, "--replicaof", "127.0.0.1", str(self.primary.port))
        watch = (
            f"sentinel monitor {self.SERVICE} 127.0.0.1 {self.primary.port} 2\n"
            f"sentinel down-after-milliseconds {self.SERVICE} 2000\n"
            f"sentinel failover-timeout {self.SERVICE} 5000\n"
            f"sentinel parallel-syncs {self.SERVICE} 1\n"
        )
        self.sentinels = [_server(self.root, sentinel_config=watch) for _ in range(3)]
        self.survivor = self.replica

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.SERVICE}"

    def master_port(self) -> int | None:
        """The primary's port as the first sentinel that answers names it."""
        for sentinel in self.sentinels:
            if sentinel.proc is None:
                continue
            lines = redis_cli(sentinel.port, "sentinel", "get-master-addr-by-name", self.SERVICE).split()
            if len(lines) == 2 and lines[1].isdigit():
                return int(lines[1])
        return None

    def start(self) -> None:
        self.primary.start()
        self.replica.start()
        _wait("replica in sync", lambda: _in_sync(self.replica.port))
        for sentinel in self.sentinels:
            sentinel.start()
        # Every sentinel knows the replica and the other sentinels before a failover can be agreed.
        for sentinel in self.sentinels:
            _wait("sentinels and replica discovered", lambda s=sentinel: self._sees_all(s.port))

    def _sees_all(self, port: int) -> bool:
        text = redis_cli(port, "sentinel", "master", self.SERVICE).split()
        fields = dict(zip(text[::2], text[1::2], strict=False))
        return fields.get("num-slaves") == "1" and fields.get("num-other-sentinels") == "2"

    def kill_primary(self) -> None:
        """SIGKILL whichever of the two the sentinels name as the primary now (on a loaded machine
        they may have failed over once already)."""
        current = self.master_port()
        victim, self.survivor = (
            (self.primary, self.replica) if current == self.primary.port else (self.replica, self.primary)
        )
        victim.kill()

    def wait_failover(self) -> None:
        """Until the sentinels name the survivor of ``kill_primary`` as the primary."""
        _wait("failover to the replica", lambda: self.master_port() == self.survivor.port)

    def close(self) -> None:
        for process in (*self.sentinels, self.replica, self.primary):
            process.stop()
        shutil.rmtree(self.root, ignore_errors=True)
