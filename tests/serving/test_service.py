"""The real BentoML server over HTTP: every endpoint, the bad-input matrix, logging, metrics, reload."""

from __future__ import annotations

import json
import re
import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from pigeonhole import __version__
from pigeonhole.cli import app
from pigeonhole.core.settings import Settings
from pigeonhole.model import data
from pigeonhole.model.promote import run_gate
from pigeonhole.model.registry import connect
from pigeonhole.model.synthetic import generate
from pigeonhole.model.train import train_and_register
from pigeonhole.prediction_log.sinks import FileSink
from pigeonhole.serving.process import free_port
from tests.serving.conftest import Server, start_server, stop_server


def test_suggest_returns_calibrated_top_k_with_model_version(server: Server) -> None:
    with server.client() as client:
        answer = client.post(
            "/suggest", json={"title": "iPhone 13 128GB, like new", "price": 350, "k": 5}
        ).json()
    assert answer["suggestions"][0]["category"] == "Electronics > Mobile phones"
    assert len(answer["suggestions"]) == 5
    scores = [s["score"] for s in answer["suggestions"]]
    assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1.0001
    assert answer["model_name"] == "listing-category" and answer["model_version"] == "1"
    assert answer["variant"] == "control" and len(answer["request_id"]) == 32 and not answer["abstained"]


def test_vague_title_abstains(server: Server) -> None:
    with server.client() as client:
        answer = client.post("/suggest", json={"title": "stuff"}).json()
    assert answer["abstained"] is (answer["suggestions"][0]["score"] < 0.35)


def test_batch_answers_in_order_and_respects_the_limit(server: Server) -> None:
    titles = ["Bugaboo Fox pushchair", "2 bed flat near station", "Nike Air Max 90 size 9"]
    with server.client() as client:
        results = client.post("/suggest_batch", json={"items": [{"title": t, "k": 1} for t in titles]}).json()
        too_many = client.post("/suggest_batch", json={"items": [{"title": "sofa"}] * 65})
        empty = client.post("/suggest_batch", json={"items": []})
    assert [r["suggestions"][0]["category"] for r in results] == [
        "Kids > Prams & pushchairs",
        "Property > Flats for rent",
        "Fashion > Shoes",
    ]
    assert too_many.status_code == 400 and "at most 64 items" in too_many.text
    assert empty.status_code == 200 and empty.json() == []


BAD_INPUT = {
    "malformed JSON": (b'{"title": "sofa"', 400, "malformed JSON"),
    "empty body": (b"", 400, "empty request body"),
    "invalid UTF-8": (b'{"title": "caf\xe9"}', 400, "not valid UTF-8"),
    "JSON array": (b'[{"title": "sofa"}]', 400, "must be a JSON object"),
    "title missing": (b'{"price": 3}', 400, "title"),
    "title blank": (b'{"title": "   "}', 400, "at least 1 character"),
    "title too long": (json.dumps({"title": "x" * 301}).encode(), 400, "at most 300"),
    "title not text": (b'{"title": 12}', 400, "valid string"),
    "description too long": (
        json.dumps({"title": "sofa", "description": "x" * 5001}).encode(),
        400,
        "at most 5000",
    ),
    "negative price": (b'{"title": "sofa", "price": -1}', 400, "greater than or equal to 0"),
    "NaN price": (b'{"title": "sofa", "price": NaN}', 400, "finite"),
    "price as text": (b'{"title": "sofa", "price": "cheap"}', 400, "valid number"),
    "k zero": (b'{"title": "sofa", "k": 0}', 400, "greater than or equal to 1"),
    "k too big": (b'{"title": "sofa", "k": 21}', 400, "less than or equal to 20"),
    "unknown field": (b'{"title": "sofa", "descripton": "typo"}', 400, "Extra inputs are not permitted"),
    "oversized body": (
        json.dumps({"title": "sofa", "description": "x" * 70_000}).encode(),
        413,
        "larger than",
    ),
    # what no store can hold, refused where it enters (a NUL once stalled the PostgreSQL sink for good)
    "NUL in the title": (b'{"title": "iphone\\u0000 13"}', 400, "U+0000 at position 6"),
    "bell in the description": (b'{"title": "sofa", "description": "a\\u0007"}', 400, "U+0007"),
    "unpaired surrogate": (b'{"title": "sofa \\ud800"}', 400, "U+D800"),
    "NUL in the listing id": (b'{"title": "sofa", "listing_id": "a\\u0000"}', 400, "U+0000"),
    "zero-width title": (b'{"title": "\\u200b"}', 400, "no visible characters"),
    "right-to-left marks only": (b'{"title": "\\u200f\\u200e \\u2060"}', 400, "no visible characters"),
    "nested 1,000 deep": (b'{"title": ' + b"[" * 1000 + b"]" * 1000 + b"}", 400, "nested deeper than 8"),
}


@pytest.mark.parametrize("case", BAD_INPUT)
def test_bad_input_gets_a_4xx_that_says_what_to_fix(server: Server, case: str) -> None:
    body, status, message = BAD_INPUT[case]
    with server.client() as client:
        response = client.post("/suggest", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    assert message in response.text


def test_text_in_any_script_with_tabs_and_newlines_is_welcome(server: Server) -> None:
    listing = {"title": "Café crème machine 咖啡机 🚀", "description": "line one\n\tline two\r\n"}
    with server.client() as client:
        assert client.post("/suggest", json=listing).status_code == 200


def test_a_client_trickling_its_body_gets_408_and_its_connection_back(server: Server) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(
            b"POST /suggest HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {server.keys['web']}\r\n".encode()
            + b'Content-Length: 100\r\n\r\n{"title": '
        )
        answer = b""
        while b"send it whole" not in answer:  # the server's timeout is 2 s here
            received = connection.recv(4096)
            assert received, answer
            answer += received
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"did not arrive within 2 s" in answer


def _until_closed(connection: socket.socket) -> bytes:
    answer = b""
    while received := connection.recv(4096):
        answer += received
    return answer


@pytest.mark.parametrize(
    "case", ["nothing sent", "headers trickled", "next request on a kept-alive connection"]
)
def test_a_client_slow_with_its_headers_gets_408_and_its_connection_back(server: Server, case: str) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    head = b"GET /livez HTTP/1.1\r\nHost: x\r\n"
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        if case == "headers trickled":
            for line in (head, b"Accept: */*\r\n", b"X-Slow: 1\r\n"):
                connection.sendall(line)
                time.sleep(0.5)
        elif case == "next request on a kept-alive connection":
            connection.sendall(head + b"\r\n")
            first = connection.recv(4096)
            while b"\r\n\r\n" not in first:
                first += connection.recv(4096)
            headers, body = first.split(b"\r\n\r\n", 1)
            length = int(re.search(rb"content-length: (\d+)", headers, re.IGNORECASE)[1])  # type: ignore[index]
            while len(body) < length:
                body += connection.recv(4096)
            assert headers.startswith(b"HTTP/1.1 200"), headers
            connection.sendall(head)
        started = time.monotonic()
        answer = _until_closed(connection)  # the server's header timeout is 2 s here
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"headers did not arrive within 2 s" in answer and time.monotonic() - started < 5


def test_wrong_content_type_is_415(server: Server) -> None:
    with server.client() as client:
        response = client.post("/suggest", content=b"title=sofa", headers={"content-type": "text/plain"})
    assert response.status_code == 415 and "application/json" in response.text


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
REQUEST_BODIES = st.one_of(
    st.fixed_dictionaries(
        {"title": JSON_VALUES},
        optional={
            "description": JSON_VALUES,
            "price": JSON_VALUES,
            "k": JSON_VALUES,
            "listing_id": JSON_VALUES,
        },
    ),
    st.dictionaries(st.sampled_from(["title", "description", "price", "k", "items", "x"]), JSON_VALUES),
    JSON_VALUES,
)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=REQUEST_BODIES, path=st.sampled_from(["/suggest", "/suggest_batch", "/feedback"]))
def test_no_input_produces_a_server_error(server: Server, body: object, path: str) -> None:
    with server.client() as client:
        response = client.post(path, json=body)
    assert response.status_code < 500, (body, response.text)


def test_fuzzed_bytes_never_produce_a_server_error(server: Server) -> None:
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.binary(max_size=200))
    def post(raw: bytes) -> None:
        with server.client() as client:
            response = client.post("/suggest", content=raw, headers={"content-type": "application/json"})
        assert response.status_code < 500, (raw, response.text)

    post()
    with server.client() as client:
        assert client.get("/livez").status_code == 200, "the service survived"


def _wait_for(predicate: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def test_predictions_are_logged_with_personal_data_masked(server: Server, served_home: Path) -> None:
    listing = f"lst-{time.time_ns()}"
    with server.client() as client:
        answer = client.post(
            "/suggest",
            json={
                "title": "Sony A6000 camera, call 07700 900123",
                "listing_id": listing,
                "description": "email me at jo@example.com or see https://example.com/x",
            },
        ).json()
    sink = FileSink(served_home / "logs")
    now = datetime.now(UTC)

    def logged() -> bool:
        return listing in set(
            sink.read_predictions(now - timedelta(hours=1), now + timedelta(hours=1))["listing_id"]
        )

    _wait_for(logged)
    rows = sink.read_predictions(now - timedelta(hours=1), now + timedelta(hours=1))
    row = rows[rows["listing_id"] == listing].iloc[0]
    assert row["title"] == "Sony A6000 camera, call <phone>"
    assert row["description"] == "email me at <email> or see <url>"
    assert row["request_id"] == answer["request_id"] and row["model_version"] == "1"
    assert row["categories"][0] == row["top_category"] and row["latency_ms"] >= 0


def test_feedback_is_stored_and_acceptance_counted(server: Server, served_home: Path) -> None:
    listing = {"title": "Labrador puppies ready now", "price": 450}
    with server.client() as client:
        answer = client.post("/suggest", json={**listing, "listing_id": "dog-1"}).json()
        top, token = answer["suggestions"][0]["category"], answer["feedback_token"]

        def send(chosen: str, **body: object) -> httpx.Response:
            return client.post(
                "/feedback",
                json={"feedback_token": token, "chosen_category": chosen, "listing": listing, **body},
            )

        accepted = send(top)
        other = send("Kids > Toys")
        full_path = send("Kids > Toys > Lego")
        without_token = client.post("/feedback", json={"chosen_category": "Kids > Toys", "listing": listing})
        without_listing = client.post("/feedback", json={"feedback_token": token, "chosen_category": top})
        other_listing = send(top, listing={"title": "Labrador puppies ready now", "price": 45})
    with server.client("operator") as admin:
        metrics = admin.get("/metrics").text
    assert accepted.json() == {"stored": True, "accepted_top_suggestion": True}
    assert other.json() == {"stored": True, "accepted_top_suggestion": False}
    assert full_path.status_code == 200, "a full category path is taken at the model's depth"
    assert without_token.status_code == 400 and "feedback_token" in without_token.text
    assert without_listing.status_code == 400 and "listing" in without_listing.text
    assert other_listing.status_code == 422 and "not the one this feedback_token" in other_listing.text
    now = datetime.now(UTC)
    stored = FileSink(served_home / "logs").read_feedback(now - timedelta(hours=1), now + timedelta(hours=1))
    mine = stored[stored["request_id"] == answer["request_id"]]
    assert list(mine["chosen_category"]) == [top, "Kids > Toys", "Kids > Toys"]
    assert set(mine["caller"]) == {"web"} and set(mine["listing_id"]) == {"dog-1"}
    assert set(mine["title"]) == {listing["title"]} and set(mine["price"]) == {450}
    assert set(mine["top_category"]) == {top}, "each record carries the answer it labels"
    assert 'pigeonhole_feedback_accepted_total{variant="control"}' in metrics


def test_feedback_must_answer_a_real_suggestion_with_a_real_category(server: Server) -> None:
    """The poisoning attack of the security issue: labels for listings the service never answered
    or categories the model does not have are refused, never stored; each stored label names the
    caller that sent it."""
    listing = {"title": "iPhone 12 mini"}
    with server.client("web") as web, server.client("mobile") as mobile:
        token = web.post("/suggest", json=listing).json()["feedback_token"]

        def label(client: httpx.Client, token: str, chosen: str) -> httpx.Response:
            return client.post(
                "/feedback", json={"feedback_token": token, "chosen_category": chosen, "listing": listing}
            )

        forged = label(web, token[:-4] + "AAAA", "Pets > Dogs & puppies")
        made_up = label(web, "x" * 80, "Kids > Toys")
        relayed = label(mobile, token, "Kids > Toys")
        unknown = label(web, token, "Deals > Message me on t.me/evil")
    assert forged.status_code == 422 and "not one this service issued" in forged.json()["error"]
    assert made_up.status_code == 422
    assert relayed.status_code == 200, "another app of the marketplace may relay the seller's choice"
    assert unknown.status_code == 422 and "is not a category of model v1" in unknown.json()["error"]


API_BODIES = {
    "/suggest": {"title": "Dell XPS 13 laptop"},
    "/suggest_batch": {"items": [{"title": "Dell XPS 13 laptop"}]},
}
# route -> caller -> expected status; None is no credential, "wrong" an unknown key
AUTH_MATRIX = {
    ("GET", "/livez"): {None: 200, "wrong": 200, "web": 200, "prometheus": 200, "operator": 200},
    ("GET", "/readyz"): {None: 200, "wrong": 200, "web": 200, "prometheus": 200, "operator": 200},
    ("POST", "/suggest"): {None: 401, "wrong": 401, "web": 200, "prometheus": 403, "operator": 200},
    ("POST", "/suggest_batch"): {None: 401, "wrong": 401, "web": 200, "prometheus": 403, "operator": 200},
    ("POST", "/feedback"): {None: 401, "wrong": 401, "web": 200, "prometheus": 403, "operator": 200},
    ("POST", "/reload"): {None: 401, "wrong": 401, "web": 403, "prometheus": 403, "operator": 200},
    ("GET", "/metrics"): {None: 401, "wrong": 401, "web": 403, "prometheus": 200, "operator": 200},
    ("GET", "/docs.json"): {None: 401, "wrong": 401, "web": 403, "prometheus": 403, "operator": 200},
    ("GET", "/"): {None: 401, "wrong": 401, "web": 403, "prometheus": 403, "operator": 200},
    ("GET", "/docs"): {None: 401, "wrong": 401, "web": 403, "prometheus": 403, "operator": 200},
}


def _call(server: Server, caller: str | None, method: str, path: str) -> httpx.Response:
    headers = {"Authorization": "Bearer ph_not-a-key"} if caller == "wrong" else {}
    with server.client(None if caller == "wrong" else caller) as client:
        if path == "/feedback":
            # a token this caller was issued (an admin may suggest too); others reuse web's
            issuer = caller if caller in ("web", "operator") else "web"
            with server.client(issuer) as suggester:
                answer = suggester.post("/suggest", json=API_BODIES["/suggest"]).json()
            body = {
                "feedback_token": answer["feedback_token"],
                "chosen_category": "Electronics > Laptops",
                "listing": API_BODIES["/suggest"],
            }
            return client.post(path, json=body, headers=headers)
        return client.request(method, path, json=API_BODIES.get(path), headers=headers)


@pytest.mark.parametrize(("method", "path"), list(AUTH_MATRIX))
def test_each_route_answers_exactly_the_callers_allowed(server: Server, method: str, path: str) -> None:
    seen = {caller: _call(server, caller, method, path).status_code for caller in AUTH_MATRIX[method, path]}
    assert seen == AUTH_MATRIX[method, path]


def test_refusals_say_what_to_send_and_never_echo_internals(server: Server) -> None:
    with server.client(None) as anonymous, server.client("web") as web:
        missing = anonymous.post("/suggest", json={"title": "sofa"})
        forbidden = web.post("/reload")
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert missing.json() == {"error": "send a valid API key: Authorization: Bearer <key>"}
    assert forbidden.json() == {"error": "a client key may not call /reload"}


def test_a_revoked_key_is_refused_at_once_and_rotation_keeps_the_caller_working(
    tmp_path: Path, served_home: Path
) -> None:
    running = start_server(tmp_path, {"PIGEONHOLE_HOME": str(served_home)})
    try:
        command = ["keys", "add", "web", "--file", str(running.key_file)]
        added = CliRunner().invoke(app, command)
        assert added.exit_code == 0, added.output
        new_key = added.stdout.strip().splitlines()[-1]
        revoked = CliRunner().invoke(app, ["keys", "revoke", "web", "--file", str(running.key_file)])
        assert revoked.exit_code == 0 and "revoked 2 key(s) of web" in revoked.output
        with running.client("web") as old:
            assert old.post("/suggest", json={"title": "sofa"}).status_code == 401
        readded = CliRunner().invoke(app, command)
        fresh = readded.stdout.strip().splitlines()[-1]
        assert fresh.startswith("ph_") and fresh != new_key
        headers = {"Authorization": f"Bearer {fresh}"}
        assert (
            httpx.post(f"{running.url}/suggest", json={"title": "sofa"}, headers=headers).status_code == 200
        )
    finally:
        stop_server(running)


def test_each_caller_is_rate_limited_on_its_own(tmp_path: Path, served_home: Path) -> None:
    limited = start_server(
        tmp_path, {"PIGEONHOLE_HOME": str(served_home), "PIGEONHOLE_RATE_LIMIT_PER_MINUTE": "5"}
    )
    try:
        with limited.client("web") as web, limited.client("mobile") as mobile:
            statuses = [web.post("/suggest", json={"title": "sofa"}).status_code for _ in range(6)]
            refused = web.post("/suggest", json={"title": "sofa"})
            other = mobile.post("/suggest", json={"title": "sofa"})
        assert statuses == [200] * 5 + [429]
        assert refused.status_code == 429 and 1 <= int(refused.headers["retry-after"]) <= 61
        assert "rate limit of 5 requests per minute" in refused.json()["error"]
        assert other.status_code == 200, "one caller's flood does not lock out another"
    finally:
        stop_server(limited)


def test_metrics_expose_predictions_confidence_and_model_version(server: Server) -> None:
    with server.client() as client, server.client("prometheus") as prometheus:
        answer = client.post("/suggest", json={"title": "Dell XPS 13 laptop 16GB RAM"})
        text = prometheus.get("/metrics").text
    assert answer.status_code == 200, answer.text
    assert 'pigeonhole_predictions_total{category="Electronics > Laptops",variant="control"}' in text
    assert "pigeonhole_prediction_confidence_bucket" in text
    assert 'pigeonhole_model_info{alias="champion",model_name="listing-category",version="1"} 1.0' in text
    assert "pigeonhole_log_records_dropped_total" in text
    assert 'bentoml_service_request_duration_seconds_count{endpoint="/suggest"' in text


def test_openapi_documents_every_endpoint(server: Server) -> None:
    with server.client("operator") as client:
        spec = client.get("/docs.json").json()
    assert {"/suggest", "/suggest_batch", "/feedback", "/readyz", "/livez", "/metrics"} <= set(spec["paths"])


def test_the_api_page_is_pigeonholes_and_its_example_gets_an_answer(server: Server) -> None:
    with server.client("operator") as operator:
        spec = operator.get("/docs.json").json()
        pages = [operator.get(path) for path in ("/", "/docs")]
        assets = {
            link: operator.get(link).status_code
            for link in re.findall(r'(?:src|href)="([^"]+)"', pages[0].text)
        }
    info = spec["info"]
    assert info["title"] == "pigeonhole" and info["version"] == f"{__version__} (model listing-category v1)"
    assert info["license"]["name"] == "Apache-2.0" and "BentoML" not in json.dumps(info)
    assert all(page.status_code == 200 and page.text == pages[0].text for page in pages)
    assert "googletagmanager" not in pages[0].text and "validatorUrl: null" in pages[0].text
    assert assets and set(assets.values()) == {200}, "every script and stylesheet is served locally"
    example = spec["paths"]["/suggest"]["post"]["requestBody"]["content"]["application/json"]["schema"][
        "example"
    ]
    with server.client() as client:
        answer = client.post("/suggest", json=example).json()
    assert not answer["abstained"] and answer["suggestions"][0]["category"] == "Electronics > Mobile phones"
    assert "serving listing-category v1 as champion, from sqlite:///" in server.log()


def test_not_ready_without_a_champion_but_alive(tmp_path: Path) -> None:
    empty = start_server(tmp_path, {"PIGEONHOLE_HOME": str(tmp_path / "empty")}, wait_ready=False)
    try:
        with empty.client() as client:
            assert client.get("/livez").status_code == 200
            assert client.get("/readyz").status_code == 503
            refused = client.post("/suggest", json={"title": "sofa"})
        assert refused.status_code == 503 and "no model loaded" in refused.text
        assert "champion" not in refused.text, "the reason is for operators, in the log"
        assert "has no 'champion' version" in empty.log()
    finally:
        stop_server(empty)


def test_new_champion_is_picked_up_without_restart_or_dropped_requests(tmp_path: Path) -> None:
    settings_ = Settings(
        home=tmp_path / "state", min_class_count=5, gate_floor_accuracy=0.0, gate_floor_f1=0.0
    )
    client_ = connect(settings_)
    train_and_register(settings_, data.validate(generate(400, seed=1)), source="small")
    run_gate(client_, settings_)
    running = start_server(
        tmp_path, {"PIGEONHOLE_HOME": str(settings_.home), "PIGEONHOLE_RELOAD_SECONDS": "0.5"}
    )
    try:
        with running.client() as client:
            assert client.post("/suggest", json={"title": "sofa"}).json()["model_version"] == "1"
            train_and_register(settings_, data.validate(generate(3000, seed=2)), source="big")
            assert run_gate(client_, settings_).promoted
            versions, deadline = set(), time.monotonic() + 30
            while "2" not in versions and time.monotonic() < deadline:
                response = client.post("/suggest", json={"title": "Dell XPS 13 laptop"})
                assert response.status_code == 200, response.text
                versions.add(response.json()["model_version"])
        assert "2" in versions, "the service should serve the new champion"
    finally:
        stop_server(running)


def test_smoke_command_passes_against_a_live_service(server: Server) -> None:
    """The deploy workflow's smoke test, against the real service."""
    result = CliRunner().invoke(
        app, ["smoke", server.url, "--timeout", "10", "--api-key", server.keys["web"]]
    )
    assert result.exit_code == 0, result.output
    assert "/readyz: 200" in result.output and "Electronics > Mobile phones" in result.output


def test_smoke_command_fails_when_nothing_answers() -> None:
    result = CliRunner().invoke(
        app, ["smoke", f"http://127.0.0.1:{free_port()}", "--timeout", "600", "--api-key", "ph_x"]
    )  # nothing listens: fails at once rather than after the timeout
    assert result.exit_code == 1 and "nothing answers at" in result.output, "refused: no waiting"


def test_rejected_input_never_reaches_the_server_log(server: Server) -> None:
    """A 400's log line says what was wrong, not what the seller typed (phone numbers, e-mails)."""
    phone = "+44 7700 900461"
    with server.client() as client:
        response = client.post("/suggest", json={"title": f"call me on {phone} " + "x" * 300})
    assert response.status_code == 400 and "at most 300 characters" in response.text
    deadline = time.monotonic() + 5
    while "rejected input on /suggest" not in server.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "rejected input on /suggest [POST]: title: String should have at most 300" in server.log()
    assert phone not in server.log() and "Traceback" not in server.log()
