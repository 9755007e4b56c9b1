"""The corrections database as a deployment option, checked offline: compose's "corrections" profile and the
Kubernetes manifests in deploy/kubernetes/corrections/ (opt-in: without them the tagger runs with corrections off)."""

from __future__ import annotations

import yaml

from service.settings import Settings
from tests.deploy.test_compose_and_kubernetes import KUBERNETES, compose_config, run, tool


def test_compose_keeps_postgres_behind_a_profile_and_corrections_off_by_default() -> None:
    plain = yaml.safe_load(compose_config(GRAFANA_ADMIN_PASSWORD="x").stdout)
    assert plain["services"].get("postgres", {"profiles": ["corrections"]})["profiles"] == ["corrections"]
    tagger = plain["services"]["tagger"]["environment"]
    assert Settings(corrections_db=tagger["TAGGER_CORRECTIONS_DB"]).corrections_db is None  # "" is off
    assert float(tagger["TAGGER_REVIEW_SAMPLE"]) == 0


def test_compose_runs_a_hardened_postgres_that_the_tagger_names() -> None:
    url = "postgresql://tagger:secret@postgres/tagger"
    done = compose_config(GRAFANA_ADMIN_PASSWORD="x", COMPOSE_PROFILES="corrections", TAGGER_CORRECTIONS_DB=url)
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load(done.stdout)
    postgres = config["services"]["postgres"]
    assert postgres["cap_drop"] == ["ALL"] and postgres["read_only"] is True and "ports" not in postgres
    mounts = [v if isinstance(v, str) else f"{v['source']}:{v['target']}" for v in postgres["volumes"]]
    assert [m.removesuffix(":rw") for m in mounts] == ["corrections:/var/lib/postgresql/data"]
    assert "corrections" in config["volumes"]
    assert config["services"]["tagger"]["environment"]["TAGGER_CORRECTIONS_DB"] == url
    assert Settings(corrections_db=url).corrections_db is not None


def manifests() -> list[dict]:
    return [doc for doc in yaml.safe_load_all((KUBERNETES / "corrections" / "postgres.yaml").read_text()) if doc]


def test_kubernetes_corrections_manifests_validate() -> None:
    run(tool("kubernetes-validate"), "--strict", "-k", "1.30.0", str(KUBERNETES / "corrections" / "postgres.yaml"))


def test_the_tagger_reads_the_url_from_an_optional_secret_and_may_reach_the_database() -> None:
    deployment = yaml.safe_load((KUBERNETES / "deployment.yaml").read_text())
    env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    reference = env["TAGGER_CORRECTIONS_DB"]["valueFrom"]["secretKeyRef"]
    assert reference["optional"] is True  # no Secret: corrections off, the pod starts
    by_kind = {(m["kind"], m["metadata"]["name"]): m for m in manifests()}
    statefulset = by_kind[("StatefulSet", "tagger-postgres")]
    password = {e["name"]: e for e in statefulset["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert password["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == reference["name"]
    service = by_kind[("Service", "tagger-postgres")]
    assert service["spec"]["selector"].items() <= statefulset["spec"]["template"]["metadata"]["labels"].items()
    egress = by_kind[("NetworkPolicy", "tagger-corrections-egress")]["spec"]
    tagger_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert egress["podSelector"]["matchLabels"].items() <= tagger_labels.items()
    database_rule = egress["egress"][0]
    assert database_rule["to"][0]["podSelector"]["matchLabels"] == service["spec"]["selector"]
    assert [p["port"] for p in database_rule["ports"]] == [service["spec"]["ports"][0]["port"]]
    ingress = by_kind[("NetworkPolicy", "tagger-postgres")]["spec"]["ingress"][0]
    assert ingress["from"][0]["podSelector"]["matchLabels"].items() <= tagger_labels.items()
