"""The drift job's outcome as Prometheus metrics, pushed to a Pushgateway (a CronJob has no /metrics).

Set ``PIGEONHOLE_PUSHGATEWAY`` (e.g. ``http://prometheus-pushgateway:9091``) to enable; the alert
rules in monitoring/alerts.yml read these series.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

from pigeonhole.monitoring.result import Decision, DriftResult

JOB = "pigeonhole-drift"
DRIFT_METRICS = ("pigeonhole_drift_detected", "pigeonhole_drift_share", "pigeonhole_feedback_accuracy")


def push(gateway: str, result: DriftResult) -> None:
    registry = CollectorRegistry()
    labels = ["model_name", "model_version"]
    values = (result.model_name, result.model_version)
    Gauge(DRIFT_METRICS[0], "1 when the last drift job decided drift", labels, registry=registry).labels(
        *values
    ).set(1.0 if result.decision is Decision.drift else 0.0)
    Gauge(DRIFT_METRICS[1], "Share of monitored columns that drifted", labels, registry=registry).labels(
        *values
    ).set(result.drift_share)
    if result.feedback_accuracy is not None:
        Gauge(
            DRIFT_METRICS[2], "Top-1 acceptance on feedback in the window", labels, registry=registry
        ).labels(*values).set(result.feedback_accuracy)
    push_to_gateway(gateway, job=JOB, registry=registry)
