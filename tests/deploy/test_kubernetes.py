"""The Kubernetes manifests: valid for a pinned Kubernetes version (kubernetes-validate, strict: an
unknown field is an error), their references resolve, and the shutdown fits in the grace period."""

from __future__ import annotations

import copy
from typing import Any

import dockerfile
import kubernetes_validate
import pytest

from config.settings import FIELDS
from tests.deploy import artefacts as a

# A version kubernetes-validate ships schemas for (1.25-1.37 in 1.37.0); the manifests use only
# stable APIs (apps/v1, autoscaling/v2, policy/v1, networking.k8s.io/v1).
KUBERNETES_VERSION = "1.34.0"
# The longest the server's stop takes after SIGTERM (drain, spread closes, the rest): SHUTDOWN_TIMEOUT
# as the ConfigMap sets it, else its default (realtime/process/drain.py).
SHUTDOWN_DEFAULT = next(f.default for f in FIELDS if f.env == "SHUTDOWN_TIMEOUT")

DOCUMENTS = a.kubernetes_documents()


def by_kind(docs: list[tuple[Any, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    kinds: dict[str, dict[str, Any]] = {}
    for _, doc in docs:
        assert doc["kind"] not in kinds, f"two {doc['kind']} documents"
        kinds[doc["kind"]] = doc
    return kinds


def validate(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_every_kind_the_deployment_needs_is_there():
    assert set(by_kind(DOCUMENTS)) == {
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "Ingress",
        "PodDisruptionBudget",
        "Secret",
        "Service",
    }


@pytest.mark.parametrize(
    "doc", [d for _, d in DOCUMENTS], ids=[f"{p.name}:{d['kind']}" for p, d in DOCUMENTS]
)
def test_manifest_is_valid_strictly(doc):
    validate(doc)


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    return deployment["spec"]["template"]["spec"]["containers"][0]


def test_a_misspelled_or_mistyped_field_is_refused():
    deployment = by_kind(DOCUMENTS)["Deployment"]
    misspelled = copy.deepcopy(deployment)
    c = container(misspelled)
    c["livenessprobe"] = c.pop("livenessProbe")
    with pytest.raises(kubernetes_validate.ValidationError) as err:
        validate(misspelled)
    assert "'livenessprobe' was unexpected" in err.value.message
    mistyped = copy.deepcopy(deployment)
    mistyped["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = "30s"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(mistyped)


def reference_problems(kinds: dict[str, dict[str, Any]]) -> list[str]:
    """What does not point at what it should: selectors, the scale target, the backend, envFrom."""
    problems = []
    deployment = kinds["Deployment"]
    name = deployment["metadata"]["name"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selectors = {
        "Deployment": deployment["spec"]["selector"]["matchLabels"],
        "Service": kinds["Service"]["spec"]["selector"],
        "PodDisruptionBudget": kinds["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
    }
    for kind, selector in selectors.items():
        if not selector or any(pod_labels.get(k) != v for k, v in selector.items()):
            problems.append(f"{kind} selector {selector} does not select the pods {pod_labels}")
    if kinds["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"] != name:
        problems.append("HorizontalPodAutoscaler does not scale the Deployment")
    ports = {p["name"] for p in container(deployment)["ports"]}
    for port in kinds["Service"]["spec"]["ports"]:
        if port["targetPort"] not in ports:
            problems.append(f"Service targetPort {port['targetPort']} is not a container port")
    service = kinds["Service"]["metadata"]["name"]
    service_ports = {p["name"] for p in kinds["Service"]["spec"]["ports"]}
    for rule in kinds["Ingress"]["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            if backend["name"] != service or backend["port"]["name"] not in service_ports:
                problems.append(f"Ingress backend {backend} is not the Service")
    env_from = {(k, v["name"]) for source in container(deployment)["envFrom"] for k, v in source.items()}
    expected = {("configMapRef", kinds["ConfigMap"]["metadata"]["name"])}
    expected.add(("secretRef", kinds["Secret"]["metadata"]["name"]))
    if env_from != expected:
        problems.append(f"envFrom {sorted(env_from)} is not the ConfigMap and the Secret")
    return problems


def test_references_resolve():
    assert reference_problems(by_kind(DOCUMENTS)) == []


def test_a_broken_reference_is_caught():
    kinds = copy.deepcopy(by_kind(DOCUMENTS))
    kinds["Service"]["spec"]["selector"] = {"app.kubernetes.io/name": "webinar"}
    kinds["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"] = "other"
    assert len(reference_problems(kinds)) == 2


def shutdown_problems(deployment: dict[str, Any], config: dict[str, str]) -> list[str]:
    """Probes on the server's health endpoints, and a grace period above preStop plus the server's
    SHUTDOWN_TIMEOUT (from the ConfigMap ``config``), which must exceed its drain."""
    problems = []
    c = container(deployment)
    for probe, path in (
        ("startupProbe", "/healthz"),
        ("livenessProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
    ):
        if c.get(probe, {}).get("httpGet", {}).get("path") != path:
            problems.append(f"{probe} is not GET {path}")
    command = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    if len(command) != 2 or command[0] != "sleep" or not command[1].isdigit() or int(command[1]) < 1:
        problems.append(f"preStop {command} is not a sleep of whole seconds")
        return problems
    shutdown = float(config.get("SHUTDOWN_TIMEOUT", SHUTDOWN_DEFAULT))
    drain = float(config.get("DRAIN_SECONDS", 0)) + float(config.get("DRAIN_CLOSE_WINDOW", 0))
    if shutdown <= drain:
        problems.append(f"SHUTDOWN_TIMEOUT {shutdown:g} is not above DRAIN_SECONDS + DRAIN_CLOSE_WINDOW")
    drain = int(command[1]) + shutdown
    grace = deployment["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30)
    if grace <= drain:
        problems.append(
            f"terminationGracePeriodSeconds {grace} is not above preStop + shutdown ({drain:g} s)"
        )
    return problems


def test_probes_and_grace_period_fit_the_server():
    kinds = by_kind(DOCUMENTS)
    assert shutdown_problems(kinds["Deployment"], kinds["ConfigMap"]["data"]) == []


def test_a_grace_period_below_the_drain_is_caught():
    kinds = by_kind(DOCUMENTS)
    deployment = copy.deepcopy(kinds["Deployment"])
    deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 6
    container(deployment)["readinessProbe"]["httpGet"]["path"] = "/healthz"
    config = {**kinds["ConfigMap"]["data"], "SHUTDOWN_TIMEOUT": "20"}
    assert shutdown_problems(deployment, config) == [
        "readinessProbe is not GET /readyz",
        "terminationGracePeriodSeconds 6 is not above preStop + shutdown (25 s)",
    ]
    config["DRAIN_SECONDS"] = "15"
    assert "SHUTDOWN_TIMEOUT 20 is not above DRAIN_SECONDS + DRAIN_CLOSE_WINDOW" in shutdown_problems(
        kinds["Deployment"], config
    )


def test_pods_run_as_the_image_user_on_a_read_only_root():
    deployment = by_kind(DOCUMENTS)["Deployment"]
    pod = deployment["spec"]["template"]["spec"]["securityContext"]
    image_user = [c.value[0] for c in dockerfile.parse_file(str(a.DOCKERFILE)) if c.cmd == "USER"][-1]
    assert pod["runAsNonRoot"] is True
    assert f"{pod['runAsUser']}:{pod['runAsGroup']}" == image_user
    c = container(deployment)["securityContext"]
    assert c["readOnlyRootFilesystem"] is True and c["allowPrivilegeEscalation"] is False
