"""What happens when the drift job decides drift: a retraining, started by one of four backends.

A cooldown (the trigger state kept with the reports) keeps one drift episode from starting a
retraining storm: inside it, drift is still reported but nothing is started.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from pigeonhole.core.settings import Settings, TriggerKind
from pigeonhole.monitoring.reports import last_trigger, record_trigger
from pigeonhole.monitoring.result import Decision, DriftResult

log = logging.getLogger(__name__)

IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
DISPATCH_EVENT = "drift-detected"


class TriggerError(RuntimeError):
    """The backend could not start a retraining (misconfigured, refused, unreachable)."""


def _cooldown_until(settings: Settings) -> datetime | None:
    last = last_trigger(settings)
    if last is None:
        return None
    until = last + timedelta(hours=settings.trigger_cooldown_hours)
    return until if until > datetime.now(UTC) else None


def github_dispatch(settings: Settings, result: DriftResult) -> str:
    """POST a repository_dispatch `drift-detected` event; the retrain workflow listens for it."""
    if not settings.github_repository or settings.github_token is None:
        raise TriggerError("trigger=github needs PIGEONHOLE_GITHUB_REPOSITORY and GITHUB_TOKEN")
    url = f"{settings.github_api_url.rstrip('/')}/repos/{settings.github_repository}/dispatches"
    payload = {
        "event_type": DISPATCH_EVENT,
        "client_payload": {
            "model_name": result.model_name,
            "model_version": result.model_version,
            "drift_share": result.drift_share,
            "reasons": result.reasons,
            "since": result.since,
            "until": result.until,
        },
    }
    headers = {
        "Authorization": f"Bearer {settings.github_token.get_secret_value()}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
    }
    try:
        response = httpx.post(url, json=payload, headers=headers, timeout=15)
    except httpx.HTTPError as exc:
        raise TriggerError(f"GitHub unreachable: {exc}") from exc
    if response.status_code != 204:
        raise TriggerError(f"GitHub refused the dispatch: {response.status_code} {response.text[:300]}")
    return f"sent repository_dispatch '{DISPATCH_EVENT}' to {settings.github_repository}"


def job_from_template(template: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A Job from the retraining CronJob's jobTemplate, as `kubectl create job --from=cronjob/...` does.

    The template (image, command, env, Secrets, security context) is owned by the infrastructure
    code (infra/, RetrainJob), so the drift job never decides what a retraining runs.
    """
    metadata = template["metadata"]
    job_template = template["spec"]["jobTemplate"]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": f"{metadata['name']}-{now:%Y%m%d%H%M%S}"[:63],
            "namespace": metadata["namespace"],
            "labels": dict(job_template.get("metadata", {}).get("labels", {})),
            "annotations": {"cronjob.kubernetes.io/instantiate": "manual"},
        },
        "spec": job_template["spec"],
    }


def kubernetes_job(settings: Settings, result: DriftResult) -> str:
    """Create a retraining Job from the RetrainJob template, in this pod's own namespace."""
    from kubernetes import client, config

    namespace = IN_CLUSTER_NAMESPACE.read_text().strip() if IN_CLUSTER_NAMESPACE.exists() else "default"
    try:
        config.load_incluster_config()
        api = client.BatchV1Api()
        cronjob = api.read_namespaced_cron_job(settings.retrain_template, namespace)
        template = api.api_client.sanitize_for_serialization(cronjob)
        manifest = job_from_template(template, datetime.now(UTC))
        api.create_namespaced_job(namespace, manifest)
    except Exception as exc:  # config and API errors have many types; all mean "not started"
        raise TriggerError(
            f"could not create the retraining Job from cronjob/{settings.retrain_template}: {exc}"
        ) from exc
    return f"created Job {manifest['metadata']['name']} in namespace {namespace}"


def local_retrain(settings: Settings, result: DriftResult) -> str:
    from pigeonhole.monitoring.retrain import retrain

    outcome = retrain(settings, reason=f"after drift in {result.since[:16]} .. {result.until[:16]}")
    return outcome.summary()


BACKENDS: dict[TriggerKind, Callable[[Settings, DriftResult], str]] = {
    TriggerKind.github: github_dispatch,
    TriggerKind.kubernetes: kubernetes_job,
    TriggerKind.local: local_retrain,
}


def fire(settings: Settings, result: DriftResult) -> str:
    """Start a retraining if the decision is drift, the backend is set and no cooldown runs."""
    if result.decision is not Decision.drift:
        return "nothing to trigger"
    if result.reference_refreshed:  # the retraining that made this champion answered this drift
        return "not fired: this window became the new champion's reference"
    if settings.trigger is TriggerKind.none:
        return "trigger=none: report only"
    cooldown = _cooldown_until(settings)
    if cooldown is not None:
        return f"cooldown: retraining started recently; next trigger after {cooldown:%Y-%m-%d %H:%M} UTC"
    message = BACKENDS[settings.trigger](settings, result)
    record_trigger(settings, settings.trigger.value)
    log.info("trigger: %s", message)
    return message
