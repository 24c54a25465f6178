"""What the log keeps when the service dies: real servers, killed with SIGKILL or stopped with SIGTERM."""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pytest

from pigeonhole.core.settings import get_settings
from pigeonhole.prediction_log.sinks import open_sink
from pigeonhole.prediction_log.window import read_labelled
from tests.serving.conftest import Server, start_server, stop_server

TITLES = ["iPhone 12 mini 64GB", "Bugaboo Fox pushchair", "Nintendo Switch OLED", "IKEA sofa, grey"]


def _answer(server: Server, count: int) -> list[str]:
    """``count`` suggestions answered 200: their request ids."""
    with server.client() as client:
        answers = [client.post("/suggest", json={"title": TITLES[i % len(TITLES)]}) for i in range(count)]
    assert all(a.status_code == 200 for a in answers)
    return [a.json()["request_id"] for a in answers]


def _label(server: Server, count: int) -> list[str]:
    """``count`` suggestions, each followed by the seller's feedback acknowledged 200: their request ids."""
    ids = []
    with server.client() as client:
        for i in range(count):
            listing = {"title": TITLES[i % len(TITLES)], "price": 10.0 + i}
            answer = client.post("/suggest", json=listing).json()
            feedback = {
                "feedback_token": answer["feedback_token"],
                "chosen_category": answer["suggestions"][0]["category"],
                "listing": listing,
            }
            assert client.post("/feedback", json=feedback).status_code == 200
            ids.append(answer["request_id"])
    return ids


def _kill_9(server: Server) -> None:
    """SIGKILL to the arbiter and every worker at once, as the OOM killer or a node failure would."""
    family = [
        psutil.Process(server.process.pid),
        *psutil.Process(server.process.pid).children(recursive=True),
    ]
    for process in family:
        process.send_signal(signal.SIGKILL)
    psutil.wait_procs(family, timeout=10)


def _stored(env: dict[str, str], ids: list[str]) -> set[str]:
    now = datetime.now(UTC)
    sink = open_sink(get_settings(home=Path(env["PIGEONHOLE_HOME"])))
    try:
        window = sink.read_predictions(
            now - timedelta(hours=1), now + timedelta(minutes=1), ["request_id", "ts"]
        )
    finally:
        sink.close()
    assert not window["request_id"].duplicated().any(), "a replay must not show a record twice"
    return set(window["request_id"]) & set(ids)


@pytest.mark.parametrize("sink", ["files", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_no_answered_prediction_is_lost_to_kill_9_and_sigterm_drains_the_rest(
    sink: str,
    served_home: Path,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a flush interval longer than the test: nothing reaches the sink before the kill but the journal
    slow = {
        "PIGEONHOLE_HOME": str(served_home),
        "PIGEONHOLE_LOG_FLUSH_SECONDS": "600",
        "PIGEONHOLE_LOG_SINK": sink,
    }
    if sink == "postgres":
        slow["PIGEONHOLE_LOG_DATABASE_URL"] = request.getfixturevalue("postgres_database")
    for name, value in slow.items():  # what this test's own reader uses too
        monkeypatch.setenv(name, value)
    first = start_server(tmp_path, slow)
    killed = _answer(first, 120)
    labelled = _label(first, 20)
    _kill_9(first)
    assert _stored(slow, killed + labelled) == set(), "the sink had none of them: only the journal did"
    now = datetime.now(UTC)
    usable = read_labelled(get_settings(), now - timedelta(hours=1), now + timedelta(minutes=1))
    assert set(labelled) <= set(usable["request_id"]), (
        "acknowledged feedback is usable by retraining and drift without its prediction"
    )
    assert usable["title"].notna().all() and usable["top_category"].notna().all()

    second = start_server(tmp_path, {**slow, "PIGEONHOLE_LOG_FLUSH_SECONDS": "0.2"})
    deadline = time.monotonic() + 30
    answered = killed + labelled
    while _stored(slow, answered) != set(answered) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _stored(slow, answered) == set(answered), "the restarted service replays the journal"

    drained = _answer(second, 80)
    stop_server(second)  # SIGTERM
    assert second.process.returncode is not None
    assert _stored(slow, drained) == set(drained), "a graceful stop stores everything it answered"
