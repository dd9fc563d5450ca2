"""The deploy files, read without running them: docker-compose.yml (the stack and its monitoring profile),
.env.example, Prometheus's and Grafana's files (the images' commands run for real in e2e/test_deploy.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from dotenv import dotenv_values
from prometheus_client.parser import text_string_to_metric_families

from datafy.config import Settings
from datafy.metrics import exposition, instruments
from datafy.store import Store
from devtools.redis_server import PROJECT_ROOT
from tests.support.deploy import COMPOSE, ENV_EXAMPLE, GUNICORN_CONF, gunicorn_settings, healthcheck_cmd

DEPLOY = PROJECT_ROOT / "deploy"


def compose_services(text: str) -> dict[str, str]:
    """Each service of docker-compose.yml and its block of text (two-space indentation, no YAML parser)."""
    section = re.search(r"^services:\n(.*?)(?=^\S|\Z)", text, re.M | re.S)
    assert section, "no top-level services:"
    parts = re.split(r"^  ([\w-]+):[ \t]*\n", section.group(1), flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def variables_read(path: Path) -> set[str]:
    """The environment variables a Python file reads: `.get("NAME"`, `_env("NAME"`, `environ["NAME"]`, `getenv(`."""
    source = path.read_text()
    pattern = r"""(?:\.get|getenv|_env)\(\s*["']([A-Z][A-Z0-9_]*)["']|environ\[\s*["']([A-Z][A-Z0-9_]*)["']\]"""
    return {a or b for a, b in re.findall(pattern, source)}


def config_variables() -> set[str]:
    """The environment variables the settings read (every module of datafy/config/)."""
    return set().union(*(variables_read(path) for path in sorted((PROJECT_ROOT / "datafy" / "config").glob("*.py"))))


def example_variables() -> list[str]:
    """The variables .env.example names, commented-out ones included."""
    return re.findall(r"^#?[ \t]*([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.M)


def test_compose_declares_the_three_images_behind_a_healthy_private_redis() -> None:
    text = COMPOSE.read_text()
    assert "\t" not in text
    services = {name: block for name, block in compose_services(text).items() if "profiles:" not in block}
    assert list(services) == ["redis", "api", "monitor"], "the stack without profiles"
    dockerfiles = {name: re.search(r"dockerfile: (\S+)", block).group(1) for name, block in services.items()}
    assert dockerfiles == {"redis": "Dockerfile.redis", "api": "Dockerfile", "monitor": "Dockerfile.monitor"}
    known = config_variables() | variables_read(GUNICORN_CONF)
    for name, block in services.items():
        assert "restart: unless-stopped" in block, name
        assert "REDIS_PASSWORD: ${REDIS_PASSWORD:-}" in block, name
        healthcheck_cmd(PROJECT_ROOT / dockerfiles[name])  # the images' own HEALTHCHECKs
        if name != "redis":
            assert re.search(r"depends_on:\n\s+redis:\n\s+condition: service_healthy", block), name
            assert "REDIS_HOST: redis" in block, name
        environment = set(re.findall(r"^ {6}([A-Z][A-Z0-9_]*):", block, re.M))
        assert environment <= known, f"{name} sets variables nothing reads: {environment - known}"
    assert "ports:" not in services["redis"], "redis must not be published"
    assert "redis-data:/data" in services["redis"] and re.search(r"^volumes:\n  redis-data:", text, re.M)
    assert re.search(r"""- ["']?\$\{PORT:-5000\}:5000["']?$""", services["api"], re.M)
    assert "WEBHOOK_URL: ${WEBHOOK_URL:?" in services["monitor"]
    assert "stop_grace_period: 30s" in services["monitor"]


def test_env_example_lists_exactly_the_variables_the_code_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    names = example_variables()
    assert len(names) == len(set(names)), "a variable is listed twice"
    config_vars = config_variables()
    gunicorn_vars = variables_read(GUNICORN_CONF)
    assert {"REDIS_URL", "WEBHOOK_URL", "SHUTDOWN_GRACE"} <= config_vars and {"PORT", "HOST"} <= gunicorn_vars
    assert set(names) - config_vars - gunicorn_vars == set(), "listed but never read"
    assert config_vars - set(names) == set(), "read by datafy/config/ but missing from .env.example"
    assert gunicorn_vars - set(names) == set(), "read by gunicorn.conf.py but missing from .env.example"

    # Every value shown is the default: copying the file unchanged changes nothing.
    values = {k: v for k, v in dotenv_values(ENV_EXAMPLE).items() if v is not None}
    assert "REDIS_URL" not in values, "REDIS_URL must stay commented out: it wins over REDIS_HOST"
    assert Settings.from_env(values) == Settings.from_env({})
    for name in gunicorn_vars:
        monkeypatch.delenv(name, raising=False)
    defaults = gunicorn_settings()
    for name in gunicorn_vars & set(values):
        monkeypatch.setenv(name, values[name])
    from_example = gunicorn_settings()
    for setting in ("bind", "workers", "threads", "accesslog", "graceful_timeout"):
        assert from_example[setting] == defaults[setting], setting


def served_names(store: Store) -> set[str]:
    """Every sample name of a real exposition (series of both roles created, gauges read from Redis)."""
    instruments.init_api()
    instruments.init_monitor()
    instruments.DELIVERY_LAG.observe(0.1)
    return {s.name for f in text_string_to_metric_families(exposition.exposition(store).decode()) for s in f.samples}


def test_the_monitoring_profile_declares_prometheus_and_grafana_over_the_repos_files() -> None:
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {name for name, s in services.items() if "profiles" not in s} == {"redis", "api", "monitor"}
    assert services["prometheus"]["profiles"] == ["monitoring"] == services["grafana"]["profiles"]
    for name in ("prometheus", "grafana"):
        for volume in services[name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (PROJECT_ROOT / source).exists(), f"{name} mounts {source}, which is not in the repo"
            else:
                assert source in compose["volumes"], source
        assert all(port.startswith("127.0.0.1:") for port in services[name]["ports"]), "published beyond this host"
    assert compose["configs"]["metrics-token"] == {"environment": "METRICS_TOKEN"}
    assert "ports" not in services["monitor"], "the monitor's metrics stay on the compose network"

    prometheus = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    assert jobs["datafy-api"]["static_configs"][0]["targets"] == ["api:5000"]
    assert jobs["datafy-monitor"]["dns_sd_configs"][0] == {"names": ["monitor"], "type": "A", "port": 9464}
    mounted = services["prometheus"]["configs"][0]["target"]
    assert all(job["authorization"]["credentials_file"] == mounted for job in jobs.values())

    datasource = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text())
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/datafy.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_the_dashboard_uses_only_metrics_that_exist(store: Store) -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "datafy.json").read_text())
    uid = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text())
    uid = uid["datasources"][0]["uid"]
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert all(t["datasource"]["uid"] == uid for p in dashboard["panels"] for t in p["targets"])
    used = {name for expr in exprs for name in re.findall(r"\bdatafy_[a-z_]+", expr)}
    assert used - served_names(store) == set(), "the dashboard asks for metrics nobody serves"
    required = {"datafy_delivery_attempts_total", "datafy_delivery_lag_seconds_bucket", "datafy_pending_chats",
                "datafy_dead_letters", "datafy_monitors_alive", "datafy_messages_received_total"}  # fmt: skip
    assert required <= used
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
