"""Hosts for multi-host tests: Linux network namespaces on one bridge.

Each ``Host`` is a network namespace with its own loopback and one address on a /24 that a bridge in
the root namespace joins, so hosts reach each other and the test (in the root namespace, at the
bridge's address ``.1``) reaches every host by its address. Processes started on a host run inside
its namespace (``ip netns exec``, which execs the command: the child's pid is the process itself, so
``kill -9`` of it is the crash of that host's process).

``Network`` owns everything it creates: the names carry a random run id (several test runs on one
machine do not meet), and ``close`` removes the processes, namespaces, veths and the bridge, also
after a failure halfway. Needs root and the ``ip`` tool; ``unavailable()`` says why not.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Sequence

IP = shutil.which("ip") or shutil.which("ip", path="/usr/sbin:/sbin")


def _ip(*args: str) -> None:
    assert IP is not None
    run = subprocess.run([IP, *args], capture_output=True, text=True, timeout=30, check=False)
    if run.returncode != 0:
        raise OSError(f"ip {' '.join(args)}: {run.stderr.strip()}")


def unavailable() -> str | None:
    """Why network namespaces cannot be made here, or None when they can (a probe one is made)."""
    if IP is None:
        return "no `ip` command (iproute2): network namespaces as hosts need it"
    if os.geteuid() != 0:
        return "creating network namespaces and veth pairs needs root"
    probe = "wbprobe" + secrets.token_hex(3)
    try:
        _ip("netns", "add", probe)
    except OSError as error:
        return f"this machine refuses network namespaces ({error})"
    with contextlib.suppress(OSError):
        _ip("netns", "del", probe)
    return None


def _free_subnet() -> ipaddress.IPv4Network:
    """A random 10.x.y.0/24 that no interface of the root namespace is on."""
    used = subprocess.run(
        [IP or "ip", "-4", "-o", "addr"], capture_output=True, text=True, check=False
    ).stdout
    nets = [
        ipaddress.ip_interface(word).network for word in used.split() if word.count(".") == 3 and "/" in word
    ]
    for _ in range(100):
        net = ipaddress.ip_network(f"10.{random.randint(64, 250)}.{random.randint(0, 255)}.0/24")
        if not any(net.overlaps(n) for n in nets):
            return net
    raise OSError("no free 10.x.y.0/24 for the test network")


class Host:
    """One network namespace on the network's bridge, at ``address``."""

    def __init__(self, network: Network, role: str, index: int) -> None:
        self.role = role
        self.netns = f"wb{network.run}{role}"
        self.address = str(network.subnet.network_address + index)
        self._veth = f"wb{network.run}{index}"
        self._procs: list[subprocess.Popen[bytes]] = []
        _ip("netns", "add", self.netns)
        network._hosts.append(self)  # from here on close() removes it
        _ip("link", "add", self._veth, "type", "veth", "peer", "name", "eth0", "netns", self.netns)
        _ip("link", "set", self._veth, "master", network.bridge, "up")
        _ip("-n", self.netns, "link", "set", "lo", "up")
        _ip("-n", self.netns, "addr", "add", f"{self.address}/{network.subnet.prefixlen}", "dev", "eth0")
        _ip("-n", self.netns, "link", "set", "eth0", "up")

    def command(self, args: Sequence[str]) -> list[str]:
        """``args`` run inside this host's namespace."""
        assert IP is not None
        return [IP, "netns", "exec", self.netns, *args]

    def popen(self, args: Sequence[str], **kwargs: object) -> subprocess.Popen[bytes]:
        """A process on this host, killed by ``close`` if it still runs then."""
        proc: subprocess.Popen[bytes] = subprocess.Popen(self.command(args), **kwargs)  # type: ignore[call-overload]
        self._procs.append(proc)
        return proc

    def wait_port(self, port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
        """Until something on this host accepts TCP on ``port``, seen from the root namespace."""
        deadline = time.monotonic() + timeout
        while True:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"process on {self.role} exited with {proc.returncode} before listening")
            try:
                with socket.create_connection((self.address, port), timeout=0.5):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"nothing listened on {self.address}:{port} within {timeout}s"
                    ) from None
                time.sleep(0.05)

    def close(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
        # Deleting the namespace deletes its end of the veth, and with it the root end.
        with contextlib.suppress(OSError):
            _ip("netns", "del", self.netns)
        with contextlib.suppress(OSError):
            _ip("link", "del", self._veth)  # already gone, unless the namespace never got its end


class Network:
    """A bridge in the root namespace (at the subnet's ``.1``) and the hosts on it; a context manager
    that removes everything it made when it ends, however it ends."""

    def __init__(self) -> None:
        self.run = secrets.token_hex(3)
        self.subnet = _free_subnet()
        self.bridge = f"wb{self.run}br"
        self.gateway = str(self.subnet.network_address + 1)
        self._hosts: list[Host] = []
        self._bridge_made = False

    def __enter__(self) -> Network:
        try:
            _ip("link", "add", self.bridge, "type", "bridge")
            self._bridge_made = True
            _ip("addr", "add", f"{self.gateway}/{self.subnet.prefixlen}", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def host(self, role: str) -> Host:
        """A new host named ``role`` (a few letters: it is part of interface-free namespace names)."""
        return Host(self, role, len(self._hosts) + 2)

    def close(self) -> None:
        for host in reversed(self._hosts):
            host.close()
        self._hosts.clear()
        if self._bridge_made:
            with contextlib.suppress(OSError):
                _ip("link", "del", self.bridge)
            self._bridge_made = False

    def leftovers(self) -> list[str]:
        """Namespaces and links of this run that still exist (none after ``close``)."""
        assert IP is not None
        names = subprocess.run([IP, "netns", "list"], capture_output=True, text=True, check=False).stdout
        links = subprocess.run([IP, "-o", "link"], capture_output=True, text=True, check=False).stdout
        tag = f"wb{self.run}"
        return [w for w in (names + links).replace(":", " ").replace("@", " ").split() if w.startswith(tag)]
