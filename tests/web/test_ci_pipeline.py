"""docs/ci-pipeline.sh run for real (issue 18): against a live server and a real Celery
worker, with a personal access token, it imports a YAML plan, dry-runs it, waits, reads the
report and exits 0 for a clean plan, 1 (saying why) for a plan whose load would abort, and 2
for a plan the API refuses."""
# ruff: noqa: F811 -- pytest fixtures imported from tests.runs.conftest are used as arguments

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from accounts.models import PersonalAccessToken
from accounts.services import token_create
from mappings.models import Plan
from mappings.yaml_io import plan_export_yaml
from runs.models import Run
from tests.factories import UserFactory
from tests.runs.conftest import (  # noqa: F401 - fixtures used as arguments
    demo_plan,
    demo_source_db,
    demo_target_db,
    start_worker,
)

pytestmark = [pytest.mark.celery, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "ci-pipeline.sh"
# Demo fields whose dirty legacy values fail (bad phones, e-mails, dates, codes, long names).
DIRTY_FIELDS = {
    "phone",
    "account_status",
    "email",
    "legacy_created_date",
    "billing_state",
    "billing_postal_code",
    "name",
}


def _clean(text: str) -> str:
    """The demo plan cut to the accounts fields the legacy data always satisfies."""
    doc = yaml.safe_load(text)
    doc["plan"].update(name="CI clean", slug="ci-clean")
    accounts = next(e for e in doc["entities"] if e["name"] == "accounts")
    accounts["fields"] = [f for f in accounts["fields"] if f["target"] not in DIRTY_FIELDS]
    doc["entities"] = [accounts]
    doc["validation_rules"] = [
        r for r in doc["validation_rules"] if r["entity"] == "accounts" and r["kind"] != "format"
    ]
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def _dirty(text: str) -> str:
    """The whole demo plan with a 5 % failure threshold: about 24 % of its rows fail."""
    doc = yaml.safe_load(text)
    doc["plan"].update(name="CI dirty", slug="ci-dirty", failure_threshold_pct=5)
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def _pipeline(url: str, token: str, plan_file: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MP_URL": url, "MP_TOKEN": token, "MP_POLL": "0.5", "MP_TIMEOUT": "240"}
    return subprocess.run(
        ["bash", str(SCRIPT), str(plan_file)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_ci_pipeline_passes_a_clean_plan_and_fails_one_that_would_abort(
    live_server, start_worker, demo_plan, tmp_path
):
    start_worker(1)
    _, key = token_create(user=UserFactory(username="ci-bot", roles=["analyst"]), name="CI")
    exported = plan_export_yaml(plan=demo_plan)
    (clean := tmp_path / "clean.yaml").write_text(_clean(exported))
    (dirty := tmp_path / "dirty.yaml").write_text(_dirty(exported))

    passed = _pipeline(live_server.url, key, clean)
    assert passed.returncode == 0, passed.stderr
    assert "imported plan “CI clean” (ci-clean)" in passed.stderr
    assert "run succeeded: 300 extracted, 300 would load, 0 failed" in passed.stderr
    assert "verdict: pass" in passed.stderr

    failed = _pipeline(live_server.url, key, dirty)
    print(failed.stderr)  # what a CI log shows (pytest -rP)
    assert failed.returncode == 1, failed.stderr
    assert "A load would have aborted at batch" in failed.stderr
    assert "> threshold 5%" in failed.stderr
    assert "verdict: fail" in failed.stderr and "FAIL: a load of this plan" in failed.stderr
    runs = Run.objects.filter(plan__slug__in=["ci-clean", "ci-dirty"])
    assert sorted(runs.values_list("mode", "status")) == [("dry_run", "succeeded")] * 2
    assert Plan.objects.get(slug="ci-dirty").owner.username == "ci-bot"
    assert PersonalAccessToken.objects.get(name="CI").last_used_at is not None

    (broken := tmp_path / "broken.yaml").write_text(
        exported.replace("Cust_Name", "Cust_Nmae")
        .replace("legacy-crm-to-new-crm", "ci-x")
        .replace("Legacy CRM → New CRM", "CI x")
    )
    refused = _pipeline(live_server.url, key, broken)
    assert refused.returncode == 2, refused.stderr
    assert "import of" in refused.stderr and "Cust_Nmae" in refused.stderr
    revoked = _pipeline(live_server.url, key + "x", clean)
    assert revoked.returncode == 2 and "HTTP 401" in revoked.stderr
