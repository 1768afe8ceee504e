"""The servers under test: ours (``python -m server serve``, one or more instances) and
the reference ``@y/websocket-server``, each started fresh in a child process."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench.procs import (
    BENCH,
    ROOT,
    cpu_seconds,
    free_port,
    log_path,
    memory_mib,
    on_cpus,
    stop_process,
    wait_listening,
)
from rooms.roles import Role
from server.auth import issue_token

OURS = "codementor"
NODE = "@y/websocket-server"
TOKEN_TTL = 3600


class Server:
    """One server under test. ``pids`` are measured; ``url`` builds a client's URL."""

    name = ""
    tag = ""  # in file names

    def __init__(self, label: str) -> None:
        self.label = label
        self.procs: list[subprocess.Popen[bytes]] = []
        self.ports: list[int] = []
        self.secret = secrets.token_hex(32)
        self.stops: list[dict[str, Any]] = []

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def start(self) -> None:
        raise NotImplementedError

    def url(self, room: str, token: str, instance: int = 0) -> str:
        raise NotImplementedError

    def create_room(self, mode: str) -> tuple[str, str]:
        """A new room of ``mode``: its name and an owner token."""
        raise NotImplementedError

    def token(self, room: str, role: Role, name: str) -> str:
        return issue_token(self.secret, room=room, role=role, name=name, ttl=TOKEN_TTL)

    def stop(self) -> None:
        for proc in self.procs:
            self.stops.append(stop_process(proc))
        self.procs = []

    def cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids)

    def memory(self) -> tuple[float, float]:
        rss = hwm = 0.0
        for pid in self.pids:
            r, h = memory_mib(pid)
            rss, hwm = rss + r, hwm + h
        return rss, hwm

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs)


class Ours(Server):
    name = OURS
    tag = "ours"

    def __init__(
        self,
        label: str,
        data_dir: Path,
        instances: int = 1,
        redis_url: str | None = None,
        env: dict[str, str] | None = None,
        name: str = OURS,
    ) -> None:
        """``env``: extra ``CODEMENTOR_`` settings; ``name``: how the report calls this
        server (the transport family runs ours under two settings)."""
        super().__init__(label)
        self.name = name
        self.data_dir = data_dir
        self.instances = instances
        self.redis_url = redis_url
        self.env = env or {}
        self.http: httpx.Client | None = None

    def start(self) -> None:
        base = {k: v for k, v in os.environ.items() if not k.startswith("CODEMENTOR_")}
        base.update(
            CODEMENTOR_SECRET=self.secret,
            CODEMENTOR_LOG_LEVEL="warning",
            CODEMENTOR_API_RATE_PER_MINUTE="100000000",
            # One address (and one user) makes every room of a run: the room quotas off.
            CODEMENTOR_ROOMS_PER_ADDRESS_PER_HOUR="100000000",
            CODEMENTOR_ROOMS_PER_USER="0",
            CODEMENTOR_USER_FORKS_PER_HOUR="0",
            **self.env,
        )
        if self.redis_url:
            base["CODEMENTOR_REDIS_URL"] = self.redis_url
        if not self.ports:
            self.ports = [free_port() for _ in range(self.instances)]
        for i, port in enumerate(self.ports):
            env = dict(base)
            if self.redis_url:
                env["CODEMENTOR_INSTANCE_ID"] = f"bench-{'abcdefgh'[i]}"
            argv = [sys.executable, "-m", "server", "serve", "--port", str(port),
                    "--data-dir", str(self.data_dir)]  # fmt: skip
            self.procs.append(spawn(argv, ROOT, env, f"{self.label}-ours-{i}.log"))
        for port, proc in zip(self.ports, self.procs, strict=True):
            wait_listening(port, proc)
            deadline = time.monotonic() + 30
            while httpx.get(f"http://127.0.0.1:{port}/readyz").status_code != 200:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"our server on {port} not ready after 30 s")
                time.sleep(0.1)
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.ports[0]}", timeout=30)

    def stop(self) -> None:
        if self.http is not None:
            self.http.close()
            self.http = None
        super().stop()

    def url(self, room: str, token: str, instance: int = 0) -> str:
        return f"ws://127.0.0.1:{self.ports[instance]}/ws/{room}?token={token}"

    def create_room(self, mode: str) -> tuple[str, str]:
        assert self.http is not None
        return create_room(self.http, mode)


def create_room(http: httpx.Client, mode: str) -> tuple[str, str]:
    """``POST /api/rooms`` on our server: the new room's name and its owner token."""
    body = {"mode": mode, "language": "python", "title": "bench"}
    response = http.post("/api/rooms", json=body)
    if response.status_code != 201:
        raise RuntimeError(f"POST /api/rooms: {response.status_code} {response.text[:200]}")
    created = response.json()
    return str(created["room"]), str(created["owner_token"])


def spawn(
    argv: list[str], cwd: Path, env: dict[str, str], log_name: str
) -> subprocess.Popen[bytes]:
    """A server process on the server's CPUs (``--pin``), its output in ``log_name``."""
    with open(log_path(log_name), "ab") as log:
        return subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=on_cpus("server"),
        )  # fmt: skip


class NodeServer(Server):
    name = NODE
    tag = "node"

    def __init__(self, label: str, persistence_dir: Path | None = None) -> None:
        super().__init__(label)
        self.persistence_dir = persistence_dir
        self._rooms = 0

    def start(self) -> None:
        if not self.ports:
            self.ports = [free_port()]
        env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(self.ports[0])}
        if self.persistence_dir is not None:
            env["YPERSISTENCE"] = str(self.persistence_dir)
        server_js = str(BENCH / "node_modules/@y/websocket-server/src/server.js")
        self.procs = [spawn(["node", server_js], BENCH, env, f"{self.label}-node.log")]
        wait_listening(self.ports[0], self.procs[0])

    def url(self, room: str, token: str, instance: int = 0) -> str:
        # The Node server takes the room from the path and ignores the query.
        return f"ws://127.0.0.1:{self.ports[0]}/{room}?token={token}"

    def create_room(self, mode: str) -> tuple[str, str]:
        self._rooms += 1
        name = f"bench-{self._rooms}"
        return name, self.token(name, Role.OWNER, "owner")


@contextmanager
def running(server: Server) -> Iterator[Server]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


def sum_memory(servers: list[Server]) -> tuple[float, float]:
    """(RSS, peak RSS) in MiB over every process of every server."""
    rss = hwm = 0.0
    for s in servers:
        r, h = s.memory()
        rss, hwm = rss + r, hwm + h
    return rss, hwm


# -- several processes (the scaleout family): a redis-server, uvicorn workers, a proxy --


class Aux(Server):
    """A helper process that is not the server under test (``redis-server``, the proxy),
    measured beside it: its CPU and memory over the same window."""

    def __init__(self, label: str, proc: subprocess.Popen[bytes]) -> None:
        super().__init__(label)
        self.name = label
        self.procs = [proc]

    def start(self) -> None:  # started by its owner
        pass


@contextmanager
def redis_server(data_dir: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A throwaway ``redis-server`` on loopback (no persistence): its URL and process."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install -y redis-server)")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(data_dir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=on_cpus("server"),
    )  # fmt: skip
    try:
        wait_listening(port, proc)
        yield f"redis://127.0.0.1:{port}/0", proc
    finally:
        stop_process(proc)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (uvicorn's workers), from ``/proc/*/stat``."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # exited meanwhile
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: list[int] = []
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        children = sorted(p for p, pp in parents.items() if pp == parent)
        found += children
        frontier += children
    return found


class Workers(Ours):
    """``codementor serve --workers N`` (N uvicorn processes on one port, each an instance
    sharing the rooms through Redis). The kernel deals the connections to the workers, so
    a room's peers land on different ones. Measured: the master and every worker."""

    def __init__(
        self, label: str, data_dir: Path, workers: int, redis_url: str, env: dict[str, str]
    ) -> None:
        super().__init__(label, data_dir, redis_url=redis_url,
                         env={**env, "CODEMENTOR_WORKERS": str(workers)})  # fmt: skip
        self.workers = workers
        self.children: list[int] = []

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs] + self.children

    def start(self) -> None:
        super().start()
        deadline = time.monotonic() + 60
        while True:  # every worker up (spawned), and answering
            kids = descendants(self.procs[0].pid)
            workers = [pid for pid in kids if "spawn_main" in cmdline(pid)]
            if len(workers) >= self.workers and self._ready(2 * self.workers):
                self.children = kids
                return
            if time.monotonic() > deadline:
                self.stop()  # running() stops only what started
                raise RuntimeError(f"{self.workers} workers not ready after 60 s ({kids})")
            time.sleep(0.2)

    def _ready(self, times: int) -> bool:
        """``/readyz`` answered 200 on ``times`` new connections in a row (the kernel
        hands each to some worker)."""
        for _ in range(times):
            if httpx.get(f"http://127.0.0.1:{self.ports[0]}/readyz").status_code != 200:
                return False
        return True


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


# maxconn: two descriptors a connection must fit the hard RLIMIT_NOFILE (20,000 on the
# bench machine), or HAProxy refuses to start.
HAPROXY_CFG = """global
    maxconn 9000
    nbthread 1

defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h

frontend bench
    bind 127.0.0.1:{port}
    default_backend ours

backend ours
{balance}
{servers}
"""
# Affinity: the path (/ws/{room}; ``balance uri`` hashes the part before the "?", so the
# token does not count) picks the instance, consistently; without: one after the other.
BALANCE = {
    True: "    balance uri\n    hash-type consistent",
    False: "    balance roundrobin",
}


def start_haproxy(
    label: str, ports: list[int], affinity: bool
) -> tuple[subprocess.Popen[bytes], int]:
    """HAProxy in front of the servers on ``ports`` (``BALANCE[affinity]``), listening on a
    free loopback port: the process and that port."""
    binary = shutil.which("haproxy")
    if binary is None:
        raise RuntimeError("haproxy is not installed (apt-get install -y haproxy)")
    port = free_port()
    servers = "\n".join(f"    server i{i} 127.0.0.1:{p}" for i, p in enumerate(ports))
    cfg = log_path(f"{label}-haproxy.cfg")
    cfg.write_text(HAPROXY_CFG.format(port=port, balance=BALANCE[affinity], servers=servers))
    proc = spawn([binary, "-db", "-f", str(cfg)], ROOT, dict(os.environ), f"{label}-haproxy.log")
    wait_listening(port, proc)
    return proc, port


class Proxied(Ours):
    """N separate instances of ours with Redis behind one HAProxy (``balance uri`` with
    consistent hashing: a room's peers meet on one instance; or round robin: they do
    not). Clients connect through the proxy; rooms are created on instance 0 directly.
    ``proxy``: the HAProxy process, measured apart from ours."""

    def __init__(
        self,
        label: str,
        data_dir: Path,
        instances: int,
        redis_url: str,
        affinity: bool,
        env: dict[str, str],
    ) -> None:
        super().__init__(label, data_dir, instances=instances, redis_url=redis_url, env=env)
        self.affinity = affinity
        self.proxy_port = 0
        self.proxy: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        super().start()
        try:
            self.proxy, self.proxy_port = start_haproxy(self.label, self.ports, self.affinity)
        except BaseException:  # running() stops only what started: not the instances
            self.stop()
            raise

    def stop(self) -> None:
        if self.proxy is not None:
            self.stops.append({"proxy": True, **stop_process(self.proxy)})
            self.proxy = None
        super().stop()

    def url(self, room: str, token: str, instance: int = 0) -> str:
        return f"ws://127.0.0.1:{self.proxy_port}/ws/{room}?token={token}"
