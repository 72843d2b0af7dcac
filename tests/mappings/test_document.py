"""The generated plan document: sections, the real mapping in words, versions, PDF."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

from mappings.demo_plan import demo_plan_install
from mappings.models import FieldMapping, LookupEntry, LookupTable, Milestone
from mappings.services import plan_version_create
from migration_planner.plan_document import (
    plan_document_context,
    plan_document_html,
    plan_document_markdown,
    plan_document_pdf,
    rule_chain_words,
    rule_step_words,
    timeline_svg,
)
from runs.engine.rules import REGISTRY
from tests.factories import PlanFactory, SystemFactory
from validation.models import SignOff

pytestmark = pytest.mark.django_db

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
US_STATES = {"CA": "California", "NY": "New York", "TX": "Texas", "WA": "Washington"}
NAME_CHAIN = (
    "Trim whitespace, then title case, then fail values longer than 80 characters; required."
)
SECTIONS = [
    "1. Scope and executive summary",
    "2. Systems",
    "3. Field mapping",
    "4. Validation plan",
    "5. Rollback procedure",
    "6. User acceptance testing and sign-off",
    "7. Timeline and key milestones",
    "Appendix A. Lookup tables",
]


@pytest.fixture
def demo(analyst):
    source = SystemFactory(name="Legacy CRM", description="The 2009 CRM on SQL Server.")
    target = SystemFactory(name="New CRM", environment="uat")
    plan, _ = demo_plan_install(
        source=source, target=target, owner=analyst, us_states=US_STATES, today=dt.date(2026, 3, 2)
    )
    return plan


def _required(rule) -> dict:
    samples = {
        "lookup": "us-states",
        "entity": "accounts",
        "regex": "[0-9]+",
        "int": 5,
        "str": "x",
        "choice": None,
    }
    return {
        p.name: (p.choices[0] if p.type == "choice" else samples[p.type])
        for p in rule.params
        if p.required
    }


# --------------------------------------------------------------------------- words


def test_rule_chain_words_reads_the_chain_in_order():
    steps = [("trim", {}), ("title", {}), ("truncate", {"length": 80, "on_overflow": "fail"})]

    assert rule_chain_words(steps, required=True) == NAME_CHAIN


def test_rule_chain_words_without_steps_is_a_direct_map_with_default():
    assert rule_chain_words([], sources=1, default="USD") == "Direct map; “USD” when empty."
    assert rule_chain_words([], sources=0) == "No source (left empty)."


def test_rule_step_words_uses_the_parameters():
    assert rule_step_words("value_map", {"lookup": "us-states", "on_missing": "fail"}) == (
        "map through lookup table “us-states” (unmapped values fail)"
    )
    assert (
        rule_step_words("cast", {"to": "decimal", "scale": 2, "thousands_separator": ","})
        == "cast to decimal with 2 places (removing “,”)"
    )
    assert rule_step_words("truncate", {"length": 40}) == "cut to 40 characters"


def test_rule_step_words_covers_every_registry_rule():
    words = {name: rule_step_words(name, _required(rule)) for name, rule in REGISTRY.items()}

    assert all(w and "invalid parameters" not in w for w in words.values()), words
    assert len(set(words.values())) == len(REGISTRY)


# --------------------------------------------------------------------------- HTML


def test_plan_document_html_has_every_section_and_the_real_mapping(demo):
    html = plan_document_html(plan=demo)

    for section in SECTIONS:
        assert section in html, section
    row = re.search(
        r"<tr><td class=\"code\">Cust_Name</td><td class=\"code\">name</td>"
        r"<td>(.*?)</td>",
        html,
    )
    assert row is not None
    assert row.group(1) == NAME_CHAIN
    assert "Address_Line1, Address_Line2" in html
    assert "map through lookup table “us-states” (unmapped values fail)" in html
    assert "<svg" in html and "<script" not in html
    # the favicon the other pages use (no 404 on /favicon.ico when the HTML is opened)
    assert '<link rel="icon" href="/static/img/favicon' in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "unversioned draft" in html
    assert "Not signed off yet" in html


def test_plan_document_html_escapes_user_text(demo):
    FieldMapping.objects.filter(entity__plan=demo, target_column="name").update(
        notes="<script>alert(1)</script>"
    )

    html = plan_document_html(plan=demo)

    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_plan_document_never_shows_secrets_or_connection_details(demo):
    source = demo.source
    source.kind, source.host, source.database, source.username, source.path = (
        "postgresql",
        "legacy.db.internal",
        "crm",
        "etl_user_xyz",
        "",
    )
    source.set_secret("s3cr3t-pw")
    source.save()

    texts = [plan_document_html(plan=demo), plan_document_markdown(plan=demo)]

    for text in texts:
        for needle in ("s3cr3t-pw", source.secret_ciphertext, "legacy.db.internal", "etl_user_xyz"):
            assert needle not in text
        assert "Legacy CRM (PostgreSQL, Development)" in text


def test_plan_document_names_the_version_and_the_sign_off(demo, analyst, approver):
    version = plan_version_create(plan=demo, user=analyst)
    SignOff.objects.create(plan=demo, version=version, approver=approver, decision="approved")

    html = plan_document_html(plan=demo)

    assert 'from <strong class="vlabel">version 1</strong>' in html
    assert version.content_hash in html
    assert re.search(r">Approved</span>\s+by abe on \d{4}-\d\d-\d\d for version 1", html)


def test_plan_document_after_an_edit_says_unversioned_draft(demo, analyst):
    plan_version_create(plan=demo, user=analyst)
    FieldMapping.objects.filter(entity__plan=demo, target_column="name").update(required=False)

    context = plan_document_context(plan=demo)

    assert context["version"]["label"] == "unversioned draft"
    assert context["version"]["note"].startswith("The plan was edited after version 1")


def test_plan_document_after_a_revert_names_the_version_it_matches(demo, analyst):
    """REVIEW9 J1-3: reverted to version 1's content, the document is version 1's again."""
    from mappings.services_versions import plan_version_revert

    v1 = plan_version_create(plan=demo, user=analyst)
    FieldMapping.objects.filter(entity__plan=demo, target_column="name").update(required=False)
    plan_version_create(plan=demo, user=analyst)
    plan_version_revert(plan=demo, version=v1, user=analyst)

    version = plan_document_context(plan=demo)["version"]

    assert (version["label"], version["hash"], version["current"]) == (
        "version 1",
        v1.content_hash,
        True,
    )
    assert version["note"] == "Reverted to version 1's content (version 2 is newer)."


def test_plan_document_says_which_fields_use_a_lookup_default(demo):
    """REVIEW9 J1-3: a lookup's default is used only by steps with on_missing/on_null default."""
    demo.lookups.filter(name="account-status").update(default_value="Unknown")
    states = demo.lookups.get(name="us-states")
    states.default_value = "Other"
    states.save()
    step = FieldMapping.objects.get(entity__plan=demo, target_column="billing_state").steps.get(
        rule="value_map"
    )
    step.params = {**step.params, "on_missing": "default"}
    step.save()

    for text in (plan_document_html(plan=demo), plan_document_markdown(plan=demo)):
        assert (
            "Default “Unknown”: accounts.account_status uses it for empty values only "
            "(unmapped values fail)." in text
        )
        assert (
            "Default “Other”: accounts.billing_state uses it for unmapped and empty values." in text
        )
        assert "Unmapped values default to" not in text


def test_plan_document_lists_every_lookup_entry(demo):
    table = LookupTable.objects.create(plan=demo, name="zip-regions")
    LookupEntry.objects.bulk_create(
        LookupEntry(table=table, key=f"{n:05d}", value=f"R{n}") for n in range(25)
    )

    html = plan_document_html(plan=demo)
    markdown = plan_document_markdown(plan=demo)

    for text in (html, markdown):
        assert "25 entries, all listed." in text
        assert all(f"{n:05d}" in text for n in range(25))


def test_plan_document_puts_lookup_tables_in_an_appendix_the_fields_refer_to(demo):
    """Lookups: A.1 account-status, A.2 us-states, after section 7; the fields that map
    through them name (HTML: link to) their appendix instead of listing entries inline."""
    html = plan_document_html(plan=demo)
    markdown = plan_document_markdown(plan=demo)
    pdf = ""
    if shutil.which("pdftotext"):
        pdf = subprocess.run(
            ["pdftotext", "-", "-"],
            input=plan_document_pdf(plan=demo),
            capture_output=True,
            check=True,
        ).stdout.decode()
        pdf = " ".join(pdf.split())
    for text in filter(None, (re.sub(r"<[^>]+>", "", html), markdown, pdf)):
        mapping, appendix = (
            text.split("Appendix A. Lookup tables", 1)[0],
            text.rsplit("Appendix A. Lookup tables", 1)[1],
        )
        assert "7. Timeline and key milestones" in mapping  # the appendix comes last
        assert "California" not in mapping and "California" in appendix
        assert "A.1 account-status" in appendix and "A.2 us-states" in appendix
        assert "see Appendix A.2 (4 entries)" in mapping, text[:200]
    state = re.search(r"<tr><td class=\"code\">State_Code</td>.*?</tr>", html)[0]
    assert '<a href="#lookup-us-states">Appendix A.2</a>' in state
    assert 'id="lookup-us-states"' in html


def test_plan_document_rollback_describes_the_ledger_mechanism(demo):
    demo.failure_threshold_pct, demo.rollback_on_threshold = Decimal("12.50"), True
    demo.save()

    rollback = plan_document_context(plan=demo)["rollback"]

    assert rollback["triggers"][0] == (
        "More than 12.5% of a run's rows fail: the run aborts; "
        "the run is then rolled back automatically."
    )
    assert any(
        "newest first from the target's ledger" in s and "orders, contacts, accounts" in s
        for s in rollback["steps"]
    )
    assert any("checksum" in s for s in rollback["steps"])


# --------------------------------------------------------------------------- Markdown


def test_plan_document_markdown_has_every_section_and_the_real_mapping(demo):
    markdown = plan_document_markdown(plan=demo)

    for section in SECTIONS:
        assert section in markdown, section
    assert (
        f"| Cust_Name | name | {NAME_CHAIN} | Target allows 80 characters; longer names go "
        "to the error queue. |"
    ) in markdown
    assert (
        "| Customer_ID unique | accounts.Customer_ID | no duplicate values | Blocking |" in markdown
    )
    assert "| Planning & Analysis | 2 weeks | 2026-03-02 | 2026-03-15 |" in markdown


def test_plan_document_markdown_escapes_table_cells(demo):
    FieldMapping.objects.filter(entity__plan=demo, target_column="name").update(
        notes="a | b\nsecond line"
    )

    markdown = plan_document_markdown(plan=demo)

    assert "| a \\| b<br>second line |" in markdown


# --------------------------------------------------------------------------- timeline


def test_timeline_svg_draws_one_bar_per_milestone():
    plan = PlanFactory()
    for i, weeks in enumerate((2, 4, 1)):
        start = dt.date(2026, 1, 5) + dt.timedelta(weeks=i * 4)
        Milestone.objects.create(
            plan=plan,
            phase=f"Phase <{i}>",
            start=start,
            end=start + dt.timedelta(weeks=weeks, days=-1),
            position=i,
        )

    svg = timeline_svg(list(plan.milestones.all()))

    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count("<rect") == 3
    assert "Phase &lt;0&gt;" in svg and "<0>" not in svg
    assert "Jan 2026" not in svg and "Feb 2026" in svg
    assert timeline_svg([]) == ""


# --------------------------------------------------------------------------- PDF


def test_plan_document_pdf_renders_and_converts_to_png(demo):
    pdf = plan_document_pdf(plan=demo)

    assert pdf.startswith(b"%PDF")
    assert shutil.which("pdftoppm"), "poppler-utils (pdftoppm) must be installed"
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "plan-document.pdf").write_bytes(pdf)
    subprocess.run(
        [
            "pdftoppm",
            "-png",
            "-r",
            "80",
            "-f",
            "1",
            "-l",
            "1",
            str(ARTIFACTS / "plan-document.pdf"),
            str(ARTIFACTS / "plan-document"),
        ],
        check=True,
        timeout=60,
    )
    page = next(ARTIFACTS.glob("plan-document-*1.png"))
    assert page.stat().st_size > 20_000
    pages = subprocess.run(
        ["pdfinfo", str(ARTIFACTS / "plan-document.pdf")],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert int(re.search(r"Pages:\s+(\d+)", pages).group(1)) >= 4


def test_plan_document_reads_right_durations_plurals_and_names_as_written(demo):
    from mappings.models import EntityMapping, Milestone
    from migration_planner.plan_document import duration_text, plural

    Milestone.objects.filter(plan=demo).delete()
    Milestone.objects.create(
        plan=demo,
        phase="Build",
        start=dt.date(2026, 3, 2),
        end=dt.date(2026, 3, 13),
        deliverable="ETL",
    )
    EntityMapping.objects.filter(plan=demo).exclude(name="accounts").delete()
    markdown = plan_document_markdown(plan=demo)
    assert "| Build | 1 week 5 days | 2026-03-02 | 2026-03-13 | ETL |" in markdown
    assert "1.71429" not in markdown and " wk" not in markdown
    assert "- **Scope:** 1 entity, " in markdown and "1 entities" not in markdown
    assert "Key Customer_ID; load mode" in markdown
    assert (duration_text(14), duration_text(1), plural(2, "entity", "entities")) == (
        "2 weeks",
        "1 day",
        "2 entities",
    )
    if shutil.which("pdftotext"):
        pdf = subprocess.run(
            ["pdftotext", "-", "-"],
            input=plan_document_pdf(plan=demo),
            capture_output=True,
            check=True,
        ).stdout.decode()
        pdf = " ".join(pdf.split())  # table cells wrap
        assert "1 week 5 days" in pdf and "1.71429" not in pdf
        assert "1 entities" not in pdf and "entities" not in pdf.split("mapped field")[0]
    assert "<b>1</b>entity</div>" in plan_document_html(plan=demo)
