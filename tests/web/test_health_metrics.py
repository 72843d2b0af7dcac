"""/healthz reports database, broker and live workers; /metrics answers Prometheus text to
a loopback scraper or a bearer token holder only, and never carries a secret."""

from __future__ import annotations

import pytest

from mappings.models import System
from runs.services.workers import worker_heartbeat

pytestmark = pytest.mark.django_db


def test_healthz_counts_live_workers_and_can_require_one(client):
    body = client.get("/healthz").json()
    assert body["workers"] == {"ok": False, "live": 0}
    assert client.get("/healthz").status_code == 200  # the web tier itself is fine
    assert client.get("/healthz?require=workers").status_code == 503
    worker_heartbeat(name="celery@w1", hostname="w1", pid=10, concurrency=2)
    response = client.get("/healthz?require=workers")
    assert (response.status_code, response.json()["workers"]) == (200, {"ok": True, "live": 1})


def test_metrics_answer_a_loopback_scraper(client):
    worker_heartbeat(name="celery@w1", hostname="w1", pid=10, concurrency=2)
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    text = response.content.decode()
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    for line in (
        'mp_runs{status="running"} 0.0',
        'mp_up{component="database"} 1.0',
        'mp_up{component="broker"} 1.0',
        "mp_workers_live 1.0",
        'mp_queue_depth{queue="celery"}',
        'mp_worker_last_heartbeat_timestamp_seconds{worker="celery@w1"}',
    ):
        assert line in text


@pytest.mark.parametrize(
    "extra",
    [
        {"REMOTE_ADDR": "192.0.2.7"},
        {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "192.0.2.7"},
        {"REMOTE_ADDR": "127.0.0.1", "HTTP_FORWARDED": "for=192.0.2.7"},
    ],
)
def test_metrics_refuse_remote_or_proxied_clients_without_a_token(client, extra):
    assert client.get("/metrics", **extra).status_code == 403


def test_metrics_with_a_token_need_it_even_from_loopback(client, settings):
    settings.MP_METRICS_TOKEN = "scrape-token-123"
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer nope", REMOTE_ADDR="192.0.2.7")
    assert wrong.status_code == 403
    right = client.get(
        "/metrics", HTTP_AUTHORIZATION="Bearer scrape-token-123", REMOTE_ADDR="192.0.2.7"
    )
    assert right.status_code == 200


def test_metrics_and_health_carry_no_secret(client, settings):
    system = System(name="Secretive", kind="postgresql", host="db.internal", database="x")
    system.set_secret("s3cr3t-pass-value")
    system.save()
    settings.MP_METRICS_TOKEN = "scrape-token-123"
    auth = {"HTTP_AUTHORIZATION": "Bearer scrape-token-123"}
    for body in (client.get("/metrics", **auth).content, client.get("/healthz").content):
        text = body.decode()
        for secret in ("s3cr3t-pass-value", "scrape-token-123", settings.SECRET_KEY):
            assert secret not in text
