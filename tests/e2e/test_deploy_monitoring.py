"""The monitoring profile: compose runs Prometheus and Grafana beside the stack, over files that exist and parse,
and the Grafana dashboard asks only for metrics the API and the monitor really serve."""

from __future__ import annotations

import json
import re

import yaml
from prometheus_client.parser import text_string_to_metric_families

from datafy.metrics import exposition, instruments
from datafy.store import Store
from devtools.redis_server import PROJECT_ROOT

DEPLOY = PROJECT_ROOT / "deploy"


def served_names(store: Store) -> set[str]:
    """Every sample name of a real exposition (series of both roles created, gauges read from Redis)."""
    instruments.init_api()
    instruments.init_monitor()
    instruments.DELIVERY_LAG.observe(0.1)
    return {s.name for f in text_string_to_metric_families(exposition.exposition(store).decode()) for s in f.samples}


def test_the_monitoring_profile_runs_prometheus_and_grafana_over_the_repos_files() -> None:
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
