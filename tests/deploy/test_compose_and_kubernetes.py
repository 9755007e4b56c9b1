"""The deployment files, checked offline: compose, Dockerfile, Prometheus config and alerts, Kubernetes, dashboard.

No container engine runs here, so each file is checked by the tool that
reads it in production (docker-compose, hadolint, promtool, the Kubernetes
schemas), and every metric the dashboard and the alerts query must be one a
live `tagger serve` really exports.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from tests.helpers import free_port, get, post, wait_ready

DEPLOY = ROOT / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
KUBERNETES = DEPLOY / "kubernetes"


def tool(name: str) -> str:
    """A command-line tool, from PATH or beside this Python (the venv's hadolint, kubernetes-validate)."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip(f"{name} is not installed (.ci/run installs it)")
    return found


def run(*command: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
    return done


def compose_config(**env: str) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [tool("docker-compose"), "-f", "docker-compose.yml", "config"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "GRAFANA_ADMIN_PASSWORD"} | env,
    )


def test_compose_file_is_valid_and_runs_the_service_read_only() -> None:
    done = compose_config(GRAFANA_ADMIN_PASSWORD="from-the-env-file")
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load(done.stdout)
    tagger = config["services"]["tagger"]
    assert tagger["read_only"] is True and "/tmp" in tagger["tmpfs"]
    assert "ports" not in tagger  # replicas are reached through nginx's one port
    assert {"nginx", "prometheus", "grafana"} <= set(config["services"])


def test_compose_hardens_every_container_and_publishes_the_consoles_on_this_host_only() -> None:
    config = yaml.safe_load(compose_config(GRAFANA_ADMIN_PASSWORD="from-the-env-file").stdout)
    for name, service in config["services"].items():
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"] and service["pids_limit"] > 0, name
    for name in ("prometheus", "grafana"):
        assert all(str(port).startswith("127.0.0.1:") for port in config["services"][name]["ports"]), name
    grafana = config["services"]["grafana"]["environment"]
    assert grafana["GF_SECURITY_ADMIN_PASSWORD"] == "from-the-env-file"


def test_compose_refuses_to_start_grafana_without_a_password() -> None:
    done = compose_config()
    assert done.returncode != 0 and "GRAFANA_ADMIN_PASSWORD" in done.stderr


def test_dockerfile_passes_hadolint_and_runs_unprivileged() -> None:
    run(tool("hadolint"), "Dockerfile")
    text = (ROOT / "Dockerfile").read_text()
    runtime = text[text.index("AS runtime") :]
    assert "USER 10001" in runtime and "HEALTHCHECK" in runtime and "/readyz" in runtime
    assert "torch" not in runtime.replace("no torch", "")
    assert "gcc" not in runtime and "build-essential" not in runtime


def test_prometheus_config_and_rules_pass_promtool() -> None:
    promtool = tool("promtool")
    run(promtool, "check", "config", str(PROMETHEUS / "prometheus.yml"))
    run(promtool, "check", "rules", str(PROMETHEUS / "alerts.yml"))


def test_every_alert_fires_in_promtool_unit_tests() -> None:
    run(tool("promtool"), "test", "rules", str(PROMETHEUS / "alerts_test.yml"))
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    rules = [rule for group in groups for rule in group["rules"] if "alert" in rule]
    tests = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())["tests"]
    fired = {case["alertname"] for test in tests for case in test["alert_rule_test"] if case["exp_alerts"]}
    assert fired == {rule["alert"] for rule in rules}


def test_kubernetes_scrape_config_passes_promtool(tmp_path: Path) -> None:
    config_map = yaml.safe_load((KUBERNETES / "prometheus-scrape.yaml").read_text())
    (tmp_path / "prometheus.yml").write_text(config_map["data"]["prometheus.yml"])
    shutil.copy(PROMETHEUS / "alerts.yml", tmp_path / "alerts.yml")
    run(tool("promtool"), "check", "config", str(tmp_path / "prometheus.yml"))


def test_kubernetes_manifests_validate_against_the_schemas() -> None:
    manifests = sorted(str(p) for p in KUBERNETES.glob("*.yaml"))
    assert len(manifests) >= 5
    run(tool("kubernetes-validate"), "--strict", "-k", "1.30.0", *manifests)


def test_pod_drains_within_its_termination_grace() -> None:
    pod = yaml.safe_load((KUBERNETES / "deployment.yaml").read_text())["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True and pod["securityContext"]["runAsNonRoot"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    pre_stop = 5  # the preStop sleep
    drain = float(env["TAGGER_REQUEST_TIMEOUT_S"]) + 5  # uvicorn's graceful timeout (service/server.py)
    assert pod["terminationGracePeriodSeconds"] > pre_stop + drain


def queried_metrics() -> set[str]:
    """Metric names used by the dashboard and the alert rules."""
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "tagger.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    exprs += [rule["expr"] for group in groups for rule in group["rules"]]  # alerts and recording rules
    # a recording rule's name (model:tagger_drift_tokens:rate15m) is not a metric the service exports
    names = {m for e in exprs for m in re.findall(r"(?<![:\w])(tagger_[a-z_]+|up)\b(?!:)", e)}
    return names - {"up"}  # `up` is Prometheus's own


def test_the_dashboard_and_alerts_use_only_recorded_series_that_a_rule_records() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "tagger.json").read_text())
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    exprs += [rule["expr"] for group in groups for rule in group["rules"]]
    used = {m for e in exprs for m in re.findall(r"\b[a-z_]+:[a-z_]+:[a-z0-9_]+\b", e)}
    recorded = {rule["record"] for group in groups for rule in group["rules"] if "record" in rule}
    assert used, "the drift alerts read recording rules"
    assert used <= recorded, f"used but never recorded: {sorted(used - recorded)}"


@pytest.fixture(scope="module")
def live_metrics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[set[str]]:
    """Sample names a real `tagger serve` on the shipped models exports after some traffic (corrections on)."""
    port = free_port()
    database = tmp_path_factory.mktemp("corrections") / "corrections.db"
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "serve", "--models", str(ROOT / "exports"), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "TAGGER_CORRECTIONS_DB": str(database), "TAGGER_REVIEW_SAMPLE": "1"},
    )
    base = f"http://127.0.0.1:{port}"

    def names() -> set[str]:
        status, body = get(f"{base}/metrics")
        assert status == 200
        lines = body.decode().splitlines()
        found = {line.split("{")[0].split(" ")[0] for line in lines if not line.startswith("#")}
        # families declared with no sample yet (the shadow metrics, until a shadow runs) are exported too
        for line in lines:
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split(" ")
                found |= {name + suffix for suffix in ("_bucket", "_count", "_sum")} if kind == "histogram" else {name}
        return found

    try:
        wait_ready(base, process, seconds=120)  # type: ignore[arg-type]
        assert post(f"{base}/v1/tag", {"sentences": [["A", "test", "."]]})[0] == 200
        assert post(f"{base}/v1/tag", {"sentences": [[]]})[0] == 422  # a rejection, so its counter has a sample
        correction = {"tokens": ["Ada", "Lovelace"], "tags": ["B-PER", "O"]}
        assert post(f"{base}/v1/models/en-ner/corrections", correction)[0] == 201
        deadline = time.monotonic() + 15  # the review writer and the database's counts: within a second or two
        while not {"tagger_review_sentences_total", "tagger_corrections_stored_tokens"} <= names():
            assert time.monotonic() < deadline, "the corrections metrics never appeared"
            time.sleep(0.2)
        yield names()
    finally:
        process.terminate()
        process.wait(30)


@pytest.mark.slow
def test_dashboard_and_alerts_query_only_metrics_the_service_exports(live_metrics: set[str]) -> None:
    queried = queried_metrics()
    assert {"tagger_requests_total", "tagger_tokens_total", "tagger_queue_depth"} <= queried
    assert queried - live_metrics == set()


def test_the_network_policy_admits_the_service_port_only_and_no_egress() -> None:
    policy = yaml.safe_load((KUBERNETES / "networkpolicy.yaml").read_text())
    spec = policy["spec"]
    deployment = yaml.safe_load((KUBERNETES / "deployment.yaml").read_text())
    assert spec["podSelector"]["matchLabels"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert spec["policyTypes"] == ["Ingress", "Egress"] and spec["egress"] == []
    assert [port["port"] for rule in spec["ingress"] for port in rule["ports"]] == [8000]


def test_the_runtime_lock_pins_every_serving_dependency_with_hashes_and_no_torch() -> None:
    import tomllib

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    lock = (ROOT / "requirements" / "serve.lock").read_text()
    pins = {
        canonicalize_name(m.group(1)): m.group(2) for m in re.finditer(r"^([A-Za-z0-9._-]+)==([^\s;]+)", lock, re.M)
    }
    blocks = re.split(r"\n(?=[A-Za-z])", lock)
    assert all("--hash=sha256:" in block for block in blocks if re.match(r"[A-Za-z0-9._-]+==", block))
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for line in declared:
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is a dependency but not in requirements/serve.lock (re-run pip-compile)"
        assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]} does not satisfy {requirement}"
    assert "torch" not in pins and "onnx" not in pins  # serving never installs training's packages


def test_compose_and_kubernetes_give_the_tagger_the_same_memory_limit() -> None:
    config = yaml.safe_load(compose_config(GRAFANA_ADMIN_PASSWORD="x").stdout)
    compose_limit = config["services"]["tagger"]["mem_limit"]
    pod = yaml.safe_load((KUBERNETES / "deployment.yaml").read_text())["spec"]["template"]["spec"]
    limits = pod["containers"][0]["resources"]["limits"]
    assert str(compose_limit).lower() in ("1g", str(2**30)) and limits["memory"] == "1Gi"
