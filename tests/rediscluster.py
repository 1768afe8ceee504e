"""A real Redis Cluster for the cluster tests, from Debian's ``redis-server``.

Every node is a ``redis-server`` on a free loopback port with ``cluster-enabled yes``, its
``nodes.conf`` in its own directory and no persistence (a restarted node comes back
empty, with its slots); ``redis-cli --cluster create`` joins them. A short
``cluster-node-timeout`` makes a replica take over within about two seconds of its
master's death. Every process is stopped by its PID at teardown.
"""

from __future__ import annotations

import random
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import redis

from tests.support import wait_until

NODE_TIMEOUT_MS = 1000
BUS_OFFSET = 10_000  # a node's cluster bus listens on its port + 10000


def cluster_port() -> int:
    """A free port whose bus port (+10000, so at most 55535) is free too. Both below
    Linux's ephemeral range (32768 up), so no outgoing connection takes one meanwhile."""
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(12_000, 22_700)
        if all(_free(p) for p in (port, port + BUS_OFFSET)):
            return port
    raise RuntimeError("no free port pair for a cluster node")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def missing_binaries() -> str | None:
    """Why the cluster cannot run here, or None."""
    for binary in ("redis-server", "redis-cli"):
        if shutil.which(binary) is None:
            return f"{binary} is not installed: apt-get install redis-server"
    return None


class ClusterNode:
    """One ``redis-server`` of the cluster: its port, directory and process."""

    def __init__(self, workdir: Path) -> None:
        self.port = cluster_port()
        self.workdir = workdir / str(self.port)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> ClusterNode:
        """Start (again): with its nodes.conf, so it keeps its slots; its data is gone."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        binary = shutil.which("redis-server")
        assert binary is not None
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir),
             "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
             "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
             "--cluster-replica-validity-factor", "0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(self._pings, 10.0, f"redis-server on {self.port}")
        return self

    def _pings(self) -> bool:
        try:
            with self.client(timeout=0.5) as r:
                return bool(r.ping())
        except redis.RedisError:
            return False

    def client(self, timeout: float = 5.0) -> redis.Redis:
        """A plain connection to this node (no redirects followed)."""
        return redis.Redis(port=self.port, socket_timeout=timeout)

    def info(self, section: str) -> dict[str, str]:
        with self.client() as r:
            return {k: str(v) for k, v in r.info(section).items()}

    def role(self) -> str:
        return self.info("replication").get("role", "?")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)
        self.proc = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class RedisClusterProcess:
    """``masters`` masters with ``replicas`` replicas each, joined into one cluster."""

    def __init__(self, workdir: Path, masters: int = 3, replicas: int = 1) -> None:
        self.masters = masters
        self.replicas = replicas
        self.nodes = [ClusterNode(workdir) for _ in range(masters * (1 + replicas))]

    @property
    def url(self) -> str:
        return f"redis://{self.nodes[0].address}/0"

    def start(self) -> RedisClusterProcess:
        try:
            for node in self.nodes:
                node.start()
            cli = shutil.which("redis-cli")
            assert cli is not None
            subprocess.run(
                [cli, "--cluster", "create", *(n.address for n in self.nodes),
                 "--cluster-replicas", str(self.replicas), "--cluster-yes"],
                check=True, capture_output=True, timeout=60,
            )  # fmt: skip
            wait_until(self.healthy, 30.0, "cluster state ok on every node", interval=0.1)
        except BaseException:
            self.stop()
            raise
        return self

    def healthy(self) -> bool:
        """Every live node sees the cluster ok, and every replica's link is up."""
        for node in self.nodes:
            if not node.alive():
                continue
            try:
                with node.client() as r:
                    state = r.execute_command("CLUSTER", "INFO")
                if b"cluster_state:ok" not in state:
                    return False
                replication = node.info("replication")
            except redis.RedisError:
                return False
            if replication.get("role") == "slave" and replication.get("master_link_status") != "up":
                return False
        return True

    def node_for(self, key: str) -> ClusterNode:
        """The live master that serves ``key``'s slot now (by its own CLUSTER NODES)."""
        for node in self.masters_now():
            with node.client() as r:
                slot = int(r.execute_command("CLUSTER", "KEYSLOT", key))
                raw = r.execute_command("CLUSTER", "NODES")
            text = raw.decode() if isinstance(raw, bytes) else str(raw)
            mine = next(line.split() for line in text.splitlines() if "myself" in line)
            for span in mine[8:]:
                low, _, high = span.partition("-")
                if not span.startswith("[") and int(low) <= slot <= int(high or low):
                    return node
        raise AssertionError(f"no live master serves {key}")

    def masters_now(self) -> list[ClusterNode]:
        return [n for n in self.nodes if n.alive() and n.role() == "master"]

    def replica_of(self, master: ClusterNode) -> ClusterNode | None:
        for node in self.nodes:
            if node.alive() and node is not master:
                info = node.info("replication")
                if info.get("role") == "slave" and info.get("master_port") == str(master.port):
                    return node
        return None

    def stop(self) -> None:
        for node in self.nodes:
            node.stop(signal.SIGKILL)

    def wait_healthy(self, timeout: float = 20.0) -> None:
        """Until the cluster is ok again (after a failover or a restart)."""
        wait_until(self.healthy, timeout, "cluster state ok again", interval=0.1)
