"""Alert rules and the Grafana dashboard only use series the platform really exports."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
import yaml

from pigeonhole.monitoring.publish import DRIFT_METRICS, push
from pigeonhole.monitoring.result import Decision, DriftResult
from pigeonhole.serving.process import free_port
from tests.serving.conftest import start_server, stop_server

MONITORING = Path(__file__).resolve().parents[2] / "monitoring"
SERIES = re.compile(r"\b((?:pigeonhole|bentoml)_[a-z_]+)")


@pytest.fixture(scope="module")
def exported(served_home: Path, tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """Series names scraped from a real service after one suggestion and one feedback, plus pushed ones."""
    server = start_server(  # abstain on everything, so the abstain counter has a series too
        tmp_path_factory.mktemp("alerts"),
        {"PIGEONHOLE_HOME": str(served_home), "PIGEONHOLE_ABSTAIN_BELOW": "0.9999"},
    )
    try:
        with server.client() as client, server.client("prometheus") as prometheus:
            listing = {"title": "Trek Marlin 5 bike"}
            answer = client.post("/suggest", json=listing).json()
            client.post(
                "/feedback",
                json={
                    "feedback_token": answer["feedback_token"],
                    "chosen_category": answer["suggestions"][0]["category"],
                    "listing": listing,
                },
            ).raise_for_status()
            text = prometheus.get("/metrics").text
    finally:
        stop_server(server)
    names = {
        line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")
    }
    return names | set(DRIFT_METRICS)


def test_alert_rules_are_well_formed_and_use_exported_series(exported: set[str]) -> None:
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text())["groups"][0]["rules"]
    assert {r["alert"] for r in rules} >= {
        "PigeonholeDriftDetected",
        "PigeonholeFeedbackAccuracyLow",
        "PigeonholePredictionLogDropping",
        "PigeonholeServiceErrors",
    }
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"} and rule["annotations"]["summary"]
        used = set(SERIES.findall(rule["expr"]))
        assert used and used <= exported, (rule["alert"], used - exported)


def test_dashboard_panels_use_exported_series(exported: set[str]) -> None:
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    assert dashboard["uid"] == "pigeonhole" and len(dashboard["panels"]) >= 8
    for panel in dashboard["panels"]:
        used = {name for target in panel["targets"] for name in SERIES.findall(target["expr"])}
        assert used and used <= exported, (panel["title"], used - exported)


def test_a_broken_rule_would_be_caught(exported: set[str]) -> None:
    assert not set(SERIES.findall("rate(pigeonhole_predicitons_total[5m])")) <= exported


class _Gateway(BaseHTTPRequestHandler):
    pushed: ClassVar[list[tuple[str, str]]] = []

    def do_PUT(self) -> None:
        type(self).pushed.append((self.path, self.rfile.read(int(self.headers["Content-Length"])).decode()))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


def test_drift_outcome_is_pushed_to_the_gateway() -> None:
    port = free_port()
    server = HTTPServer(("127.0.0.1", port), _Gateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        push(
            f"127.0.0.1:{port}",
            DriftResult(
                decision=Decision.drift,
                reasons=[],
                since="a",
                until="b",
                model_name="listing-category",
                model_version="4",
                current_rows=900,
                reference_rows=600,
                drift_share=0.6,
                feedback_accuracy=0.7,
            ),
        )
    finally:
        server.shutdown()
    [(path, body)] = _Gateway.pushed
    assert path == "/metrics/job/pigeonhole-drift"
    assert 'pigeonhole_drift_detected{model_name="listing-category",model_version="4"} 1.0' in body
