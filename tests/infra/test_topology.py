"""`make topology`: the dev stack, rendered under the mocks, runs from its own manifests and closes the
loop from nothing: bootstrap -> the service becomes ready -> traffic with feedback -> the drift
CronJob's command -> the retrain Job its trigger creates -> the service answers with the new champion.

A manifest that cannot close the loop (a wrong env name or Secret key, a missing RBAC rule, a
command the CLI refuses, a dataset nobody can read) fails this test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
from rich.progress import Progress

from pigeonhole.core.errors import ExitCode
from pigeonhole.demo import replay
from pigeonhole.model.registry import DEFAULT_DATASET
from pigeonhole.model.synthetic import generate
from pigeonhole.monitoring.trigger import job_from_template
from pigeonhole.serving.auth import bearer
from tests.infra.conftest import WEB_KEY, rendered_stack
from tests.infra.topology import PodRun, Topology, TopologyError

pytestmark = pytest.mark.postgres
# pods get mount namespaces of their own (hosts file, service-account token), as a kubelet gives them
NEEDS = "root and unshare(1), for the pods' mount namespaces"
if (os.geteuid() != 0 or shutil.which("unshare") is None) and os.environ.get("CI") != "true":
    pytestmark = [pytest.mark.postgres, pytest.mark.skip(reason=f"make topology needs {NEEDS}")]


def _wait(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(1)
    raise TopologyError(f"{what} within {timeout:.0f} s")


def test_the_dev_stack_closes_the_loop_from_its_manifests(tmp_path: Path, postgres_admin: str) -> None:
    rendered = rendered_stack("dev")
    admin = urlparse(postgres_admin)
    topology = Topology(rendered, tmp_path, (admin.hostname or "127.0.0.1", admin.port or 5432))
    data = tmp_path / "listings.csv.gz"
    generate(6000, seed=11).to_csv(data, index=False)
    try:
        with topology.step("pulumi up: PostgreSQL (the machine's), its roles, MLflow, the service, the UI"):
            database = topology.secrets["pigeonhole-database"]
            created = [urlparse(database[key]).path.lstrip("/") for key in ("registry-url", "log-url")]
            topology.stand_in_postgres(database["admin-url"], created, postgres_admin)
            code, log = topology.run_job(topology.named("Job", "pigeonhole-db-setup"))
            assert code == 0, log
            assert "pigeonhole_log_writer may only insert into predictions, feedback" in log, log
            # in Pulumi's order: what signs in to MLflow waits for the Job that makes its users
            started = {component: _start(topology, component) for component in ("mlflow", "reports")}
            topology.wait_ready(*started["mlflow"])
            code, log = topology.run_job(topology.named("Job", "pigeonhole-registry-users"))
            assert code == 0, log
            assert "pigeonhole-reader reads only" in log, log
            started["service"] = _start(topology, "service")
            topology.wait_ready(*started["reports"])
        service, service_pod = started["service"]
        with topology.step("the service is up but not ready: no champion"):
            port = service_pod["containers"][0]["ports"][0]["containerPort"]
            _wait("the service answering", lambda: _status(f"http://{service.ip}:{port}/livez") == 200, 120)
            assert _status(f"http://{service.ip}:{port}/readyz") == 503
            assert "has no 'champion' version" in service.tail()

        mlflow_url = topology.port_forward("pigeonhole-mlflow", 5000)
        with topology.step("bootstrap: publish the dataset, create a Job from the retrain CronJob"):
            assert _status(f"{mlflow_url}/api/2.0/mlflow/experiments/search") == 401, (
                "MLflow needs a password"
            )
            admin = {
                "MLFLOW_TRACKING_USERNAME": "admin",  # the operator, with the stack's admin password
                "MLFLOW_TRACKING_PASSWORD": topology.secrets["pigeonhole-mlflow-auth"]["admin-password"],
            }
            published = _cli(["data", "publish", str(data), "--tracking-uri", mlflow_url], admin)
            assert DEFAULT_DATASET in published, published
            retrain_cronjob = topology.named("CronJob", "pigeonhole-retrain")
            code, log = topology.run_job(job_from_template(retrain_cronjob, _now()))
            assert code == 0, log
        with topology.step("the service becomes ready with v1 within one reload interval"):
            _wait("ready", lambda: _status(f"http://{service.ip}:{port}/readyz") == 200, 45)

        service_url = topology.port_forward("pigeonhole-service", 80)
        with (
            topology.step("traffic: 1,500 drifted listings, sellers' feedback for half"),
            httpx.Client(base_url=service_url, timeout=60, headers=bearer(WEB_KEY)) as client,
        ):
            assert client.get("/metrics").status_code == 403, "the web app's key reads no metrics"
            replayed = replay(client, generate(1500, seed=13, drift=1.0), 2, 0.5, Progress(disable=True), "")
            assert replayed.versions == "1" and replayed.refused == 0

        with topology.step("the drift CronJob's command: drift, and its trigger creates the retrain Job"):
            drift_cronjob = topology.named("CronJob", "pigeonhole-drift")
            code, log = topology.run_job(job_from_template(drift_cronjob, _now()))
            assert code == ExitCode.declined, log
            (created,) = topology.jobs_created
            assert created["metadata"]["name"].startswith("pigeonhole-retrain-")
        with topology.step("the retrain Job the trigger created: the gate promotes v2"):
            code, log = topology.run_job(created)
            assert code == 0, log
        with topology.step("the service answers with v2 within one reload interval"):
            _wait("v2 served", lambda: _served_version(service_url) == "2", 45)
    finally:
        topology.close()
        print("\n[topology] transcript")
        for step in topology.transcript:
            print(f"[topology]   {step.seconds:6.1f} s  {step.what}")


def _start(topology: Topology, component: str) -> tuple[PodRun, dict[str, Any]]:
    """A Deployment's pod, and the pod spec it runs."""
    pod = topology.workload("Deployment", component)["spec"]["template"]["spec"]
    return topology.serve("Deployment", component), pod


def _now() -> datetime:
    return datetime.now(UTC)


def _status(url: str) -> int:
    try:
        return httpx.get(url, timeout=3).status_code
    except httpx.HTTPError:
        return 0


def _served_version(url: str) -> str | None:
    try:
        return str(
            httpx.post(
                f"{url}/suggest", json={"title": "iPhone 12 mini"}, headers=bearer(WEB_KEY), timeout=10
            ).json()["model_version"]
        )
    except (httpx.HTTPError, KeyError, ValueError):
        return None


def _cli(args: list[str], env: dict[str, str]) -> str:
    """An operator's command on their own machine (through port-forwards)."""
    done = subprocess.run(
        [str(Path(sys.executable).parent / "pigeonhole"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout
