"""Every Kubernetes object each stack would create is valid for the cluster's version, strictly:
unknown or misspelt fields fail (kubernetes-validate), as the API server's field validation would."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import kubernetes_validate
import pytest

from pigeonhole.monitoring.trigger import job_from_template
from pigeonhole_infra.config import ClusterConfig
from tests.helpers import parse_cli
from tests.infra.render import Rendered

# custom kinds the core schema does not know (Prometheus Operator, cert-manager)
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule", "ClusterIssuer"}


def cluster_version(rendered: Rendered) -> str:
    return ClusterConfig.model_validate(rendered.config["pigeonhole:cluster"]).kubernetes_version


def test_every_object_is_valid_kubernetes_in_strict_mode(stack: Rendered) -> None:
    objects = [r.manifest() for r in stack.kubernetes() if r.kind not in CUSTOM_KINDS]
    assert len(objects) >= 20
    for manifest in objects:
        kubernetes_validate.validate(manifest, cluster_version(stack), strict=True)


def test_a_misspelt_field_fails_strict_validation(dev: Rendered) -> None:
    manifest = copy.deepcopy(dev.named("Deployment", "pigeonhole-service"))
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    container["readynessProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError, match="readynessProbe"):
        kubernetes_validate.validate(manifest, cluster_version(dev), strict=True)


def test_custom_resources_are_well_formed(prod: Rendered) -> None:
    monitor = prod.named("ServiceMonitor", "pigeonhole-service")
    service = prod.named("Service", "pigeonhole-service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    rules = prod.named("PrometheusRule", "pigeonhole")["spec"]["groups"][0]["rules"]
    assert {"PigeonholeDriftDetected", "PigeonholeFeedbackAccuracyLow"} <= {rule["alert"] for rule in rules}


def test_the_drift_trigger_creates_a_valid_retraining_job_from_the_template(stack: Rendered) -> None:
    """The Job the kubernetes trigger submits is built from the deployed CronJob's jobTemplate."""
    template = stack.named("CronJob", "pigeonhole-retrain")
    job = job_from_template(template, datetime(2026, 11, 25, 20, 0, tzinfo=UTC))
    kubernetes_validate.validate(job, cluster_version(stack), strict=True)
    assert job["metadata"]["namespace"] == "pigeonhole"
    assert job["metadata"]["name"] == "pigeonhole-retrain-20261125200000"
    (container,) = job["spec"]["template"]["spec"]["containers"]
    parse_cli(container["command"])
