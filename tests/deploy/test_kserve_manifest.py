"""The KServe InferenceService (deploy/kserve/inferenceservice.yaml), checked offline.

No cluster, KServe or Knative runs here, so this checks what a file can be checked for:

- the manifest validates against the InferenceService schema in tests/data/kserve/: KServe's field
  names and types from its SDK (kserve 0.21.0), Kubernetes' own types from the 1.30 definitions that
  kubernetes-validate ships. Strictly: a field KServe does not have (`predictor.protocolVersion`: a
  custom predictor has none, PROTOCOL=v2 is its switch) or a wrong type is an error;
- KServe's conventions for a custom predictor (one container, named kserve-container; PROTOCOL v1 or
  v2; the Serverless mode, without which `scaleMetric: concurrency` has no autoscaler behind it);
- Knative's rules that a manifest can break, as knative/serving's validation states them: the port's
  name and the ports, paths and variables it reserves, the container and pod fields it refuses
  (lifecycle, terminationGracePeriodSeconds, a pod securityContext unless a feature flag is on);
- agreement with deploy/kubernetes/ (image, resources, env, uid, probes, replicas, scale-down), the
  container port against the service's default and the Dockerfile's, the probe paths against the
  routes `create_app` serves (and that they answer without an API key), every TAGGER_* variable
  against `Settings`, and that the plain Service, PDB and NetworkPolicy do not select these pods.

Not checked: what KServe's webhook and controller accept beyond the schema and make of it, Knative's
autoscaler at work (the scale target is reasoned from benchmarks/results in the manifest, not
measured under Knative), the image on a cluster, ingress and DNS, the Secret.
"""

from __future__ import annotations

import importlib.resources
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.conftest import ROOT

MANIFEST = ROOT / "deploy" / "kserve" / "inferenceservice.yaml"
SCHEMA = ROOT / "tests" / "data" / "kserve" / "inferenceservice-v1beta1.schema.json"
KUBERNETES = ROOT / "deploy" / "kubernetes"

# knative/serving pkg/apis/serving/k8s_validation.go and fieldmask.go
KNATIVE_PORT_NAMES = {"", "http1", "h2c"}
KNATIVE_RESERVED_PORTS = {8008, 8012, 8013, 8022, 9090, 9091}  # profiling, queue-proxy, metrics
KNATIVE_RESERVED_PATHS = {"/", "/dev", "/dev/log", "/tmp", "/var", "/var/log"}
KNATIVE_RESERVED_ENV = {"PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION"}
KNATIVE_CONTAINER_FIELDS = {
    *("name", "args", "command", "env", "workingDir", "envFrom", "image", "imagePullPolicy", "ports"),
    *("livenessProbe", "readinessProbe", "resources", "securityContext", "volumeMounts"),
    *("terminationMessagePath", "terminationMessagePolicy"),
}
KNATIVE_POD_FIELDS = {"serviceAccountName", "containers", "volumes", "imagePullSecrets", "enableServiceLinks"}
KNATIVE_POD_FIELDS |= {"automountServiceAccountToken"}  # false only
# KServe's ComponentExtensionSpec: the predictor's own fields, beside the pod's
KSERVE_EXTENSION_FIELDS = {
    *("minReplicas", "maxReplicas", "scaleTarget", "scaleMetric", "scaleMetricType", "containerConcurrency"),
    *("timeout", "canaryTrafficPercent", "logger", "batcher", "labels", "annotations", "autoScaling"),
}
QUEUE_PROXY_DRAIN_S = 30  # Knative's queue-proxy drains this long on SIGTERM before the container gets its own


def manifest() -> dict[str, Any]:
    return yaml.safe_load(MANIFEST.read_text())  # type: ignore[no-any-return]


def predictor() -> dict[str, Any]:
    return manifest()["spec"]["predictor"]  # type: ignore[no-any-return]


def container() -> dict[str, Any]:
    return predictor()["containers"][0]  # type: ignore[no-any-return]


def env() -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container()["env"]}


def plain_pod() -> dict[str, Any]:
    return yaml.safe_load((KUBERNETES / "deployment.yaml").read_text())["spec"]["template"]  # type: ignore[no-any-return]


def schema_errors(document: dict[str, Any]) -> list[str]:
    """Every place `document` breaks the vendored InferenceService schema, as 'path: message'."""
    pytest.importorskip("kubernetes_validate", reason="a dev dependency: pip install -e '.[dev]'")
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    definitions = importlib.resources.files("kubernetes_validate").joinpath(
        "kubernetes-json-schema/v1.30.0-local-strict/_definitions.json"
    )
    registry = Resource.from_contents(json.loads(definitions.read_text())) @ Registry()  # type: ignore[var-annotated]
    validator = Draft202012Validator(json.loads(SCHEMA.read_text()), registry=registry)
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def test_the_manifest_validates_against_the_inferenceservice_schema() -> None:
    assert schema_errors(manifest()) == []


def test_the_schema_refuses_fields_kserve_lacks_and_wrong_types() -> None:
    document = manifest()
    document["spec"]["predictor"]["protocolVersion"] = "v2"  # only KServe's own runtimes have it
    document["spec"]["predictor"]["scaleTarget"] = "64"
    document["spec"]["predictor"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/readyz"
    errors = schema_errors(document)
    assert len(errors) == 3, errors
    assert any("protocolVersion" in e for e in errors) and any("paht" in e for e in errors)


def test_it_is_a_custom_predictor_speaking_the_v2_protocol() -> None:
    spec = manifest()["spec"]
    assert set(spec) == {"predictor"}
    assert [c["name"] for c in predictor()["containers"]] == ["kserve-container"]
    assert env()["PROTOCOL"]["value"] == "v2"  # KServe accepts v1 or v2 for a custom predictor


def test_autoscaling_is_knatives_on_concurrency_with_the_plain_replica_bounds() -> None:
    hpa = yaml.safe_load((KUBERNETES / "hpa.yaml").read_text())["spec"]
    isvc, spec = manifest(), predictor()
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] in ("Serverless", "Knative")
    assert spec["scaleMetric"] == "concurrency" and spec["scaleTarget"] == 64
    # a hard limit below the target would make the target unreachable; 0 is none
    assert spec.get("containerConcurrency", 0) == 0 or spec["containerConcurrency"] >= spec["scaleTarget"]
    assert (spec["minReplicas"], spec["maxReplicas"]) == (hpa["minReplicas"], hpa["maxReplicas"])
    delay = re.fullmatch(r"(\d+)m", spec["annotations"]["autoscaling.knative.dev/scale-down-delay"])
    assert delay and int(delay.group(1)) * 60 == hpa["behavior"]["scaleDown"]["stabilizationWindowSeconds"]


def test_the_container_keeps_to_knatives_runtime_contract() -> None:
    c = container()
    assert set(c) <= KNATIVE_CONTAINER_FIELDS, set(c) - KNATIVE_CONTAINER_FIELDS
    [port] = c["ports"]  # Knative serves one port
    assert port.get("name", "") in KNATIVE_PORT_NAMES and port["containerPort"] not in KNATIVE_RESERVED_PORTS
    for probe in ("readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"]["port"] == port["containerPort"], probe
    assert {m["mountPath"].rstrip("/") or "/" for m in c["volumeMounts"]}.isdisjoint(KNATIVE_RESERVED_PATHS)
    assert set(env()).isdisjoint(KNATIVE_RESERVED_ENV)


def test_the_predictor_sets_only_fields_knative_accepts_by_default() -> None:
    spec = predictor()
    pod_fields = set(spec) - KSERVE_EXTENSION_FIELDS
    assert pod_fields <= KNATIVE_POD_FIELDS, pod_fields - KNATIVE_POD_FIELDS
    assert spec.get("automountServiceAccountToken") is False


def test_the_container_runs_as_the_plain_deployment_does() -> None:
    pod, plain = plain_pod()["spec"], plain_pod()["spec"]["containers"][0]
    c = container()
    assert (c["image"], c["imagePullPolicy"]) == (plain["image"], plain["imagePullPolicy"])
    assert c["resources"] == plain["resources"] and c["resources"]["limits"]["memory"] == "1Gi"
    # the pod's securityContext (off by default in Knative) moves to the container; fsGroup is not needed
    hardening = {k: v for k, v in pod["securityContext"].items() if k != "fsGroup"} | plain["securityContext"]
    assert hardening.items() <= c["securityContext"].items()
    for probe in ("readinessProbe", "livenessProbe"):
        assert {**c[probe], "httpGet": c[probe]["httpGet"]["path"]} == {
            **plain[probe],
            "httpGet": plain[probe]["httpGet"]["path"],
        }, probe
    plain_env = {e["name"]: e["value"] for e in plain["env"] if "value" in e}  # not the optional Secrets
    assert plain_env.items() <= {name: e.get("value") for name, e in env().items()}.items()
    assert predictor()["annotations"].items() >= plain_pod()["metadata"]["annotations"].items()
    assert [v["emptyDir"] for v in predictor()["volumes"]] == [v["emptyDir"] for v in pod["volumes"]]


def test_everything_the_process_writes_goes_to_the_memory_volume() -> None:
    c = container()
    [mount] = c["volumeMounts"]
    [volume] = predictor()["volumes"]
    assert mount["name"] == volume["name"] and volume["emptyDir"]["medium"] == "Memory"
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    # the image points both at /tmp, where Knative mounts nothing
    assert env()["HOME"]["value"] == env()["TMPDIR"]["value"] == mount["mountPath"]


def test_the_container_port_is_the_services_and_the_images() -> None:
    [port] = container()["ports"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert port["containerPort"] == Settings.model_fields["port"].default == 8000
    assert "TAGGER_PORT=8000" in dockerfile and re.search(r"^EXPOSE 8000$", dockerfile, re.M)
    assert "TAGGER_PORT" not in env() and env()["TAGGER_HOST"]["value"] == "0.0.0.0"


def test_the_pod_drains_within_its_termination_grace() -> None:
    """Knative makes `timeout` the grace: the queue-proxy drains, then the tagger (uvicorn: the deadline + 5 s)."""
    drain = float(env()["TAGGER_REQUEST_TIMEOUT_S"]["value"]) + 5  # service/server.py
    assert predictor()["timeout"] > QUEUE_PROXY_DRAIN_S + drain


def test_every_tagger_variable_is_a_setting() -> None:
    fields = {f"TAGGER_{name.upper()}" for name in Settings.model_fields}
    names = {name for name in env() if name.startswith("TAGGER_")}
    assert names <= fields, names - fields
    assert set(env()) - names <= {"PROTOCOL", "HOME", "TMPDIR"}


def test_the_control_token_comes_only_from_an_optional_secret() -> None:
    token = env()["TAGGER_CONTROL_TOKEN"]
    assert "value" not in token
    assert token["valueFrom"]["secretKeyRef"]["optional"] is True  # no Secret: the pod starts, control stays off


def test_the_plain_services_and_policies_do_not_select_these_pods() -> None:
    labels = manifest()["metadata"]["labels"] | predictor()["labels"]
    selectors = []
    for path in ("service.yaml", "pdb.yaml", "networkpolicy.yaml"):
        for doc in yaml.safe_load_all((KUBERNETES / path).read_text()):
            spec = doc["spec"]
            selectors.append(spec.get("selector") or spec["podSelector"])
    selectors = [s.get("matchLabels", s) for s in selectors]
    assert len(selectors) == 4
    assert not any(selector.items() <= labels.items() for selector in selectors)


def test_the_probe_paths_are_served_and_answer_without_a_key(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("a-key-the-probes-do-not-send\n")
    app = create_app(Settings(warmup=False, api_keys_file=keys, rate_limit=1.0))
    paths = app.openapi()["paths"]
    client = TestClient(app)  # no lifespan: not ready, as while warming up
    for probe, ok in (("livenessProbe", {200}), ("readinessProbe", {200, 503})):
        path = container()[probe]["httpGet"]["path"]
        assert "get" in paths[path], path
        assert {client.get(path).status_code for _ in range(3)} <= ok, path  # no 401, no 429


def test_the_service_serves_the_v2_protocol_it_declares() -> None:
    paths = create_app(Settings(warmup=False)).openapi()["paths"]
    if not any(path.startswith("/v2/") for path in paths):
        pytest.skip("the Open Inference Protocol routes are not in this checkout yet (issue 17)")
    assert "get" in paths["/v2/health/ready"] and "get" in paths["/v2/health/live"]
    assert any(re.fullmatch(r"/v2/models/\{\w+\}/infer", p) and "post" in paths[p] for p in paths)
