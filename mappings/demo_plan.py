"""The demo plan: legacy CRM → new CRM, following the customer plan's field-mapping table.

Data only (plus one installer service); the source/target data builders live in
``mappings/demo/legacy_crm/`` and know nothing of Django.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction

from .models import (
    EntityMapping,
    FieldMapping,
    LookupEntry,
    LookupTable,
    Milestone,
    Plan,
    RuleStep,
    System,
    UATTestCase,
    ValidationRule,
)

PLAN_SLUG = "legacy-crm-to-new-crm"
DATE_FORMATS = [
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d",
    "%m/%d/%Y",
    "%d.%m.%Y",
    "%b %d %Y",
]
STATUS_MAP = {"1": "Active", "0": "Inactive", "A": "Active", "I": "Inactive"}


def _f(target, sources=(), *steps, required=False, default=None, notes=""):
    return {
        "target": target,
        "sources": list(sources),
        "steps": list(steps),
        "required": required,
        "default": default,
        "notes": notes,
    }


def _s(rule, **params):
    return {"rule": rule, "params": params}


ENTITIES = [
    {
        "name": "accounts",
        "source_table": "customers",
        "target_table": "accounts",
        "source_key": ["Customer_ID"],
        "external_id": "account_number",
        "load_mode": "upsert",
        "load_order": 0,
        "watermark_column": "Last_Modified",
        "notes": "Customer master. Account_Number carries the legacy Customer_ID (external id).",
        "fields": [
            _f(
                "account_number",
                ["Customer_ID"],
                _s("cast", to="text"),
                required=True,
                notes="Set as external id for upsert operations.",
            ),
            _f(
                "name",
                ["Cust_Name"],
                _s("trim", collapse_inner=True),
                _s("title"),
                _s("truncate", length=80, on_overflow="fail"),
                required=True,
                notes="Target allows 80 characters; longer names go to the error queue.",
            ),
            _f(
                "billing_street",
                ["Address_Line1", "Address_Line2"],
                _s("concat", separator=", "),
                _s("trim", collapse_inner=True),
                _s("truncate", length=255),
                notes="Address lines 1 and 2 concatenated.",
            ),
            _f(
                "billing_city",
                ["City"],
                _s("trim", collapse_inner=True),
                _s("title"),
                _s("truncate", length=40),
            ),
            _f(
                "billing_state",
                ["State_Code"],
                _s("trim", collapse_inner=True),
                _s("upper"),
                _s("value_map", lookup="us-states", on_missing="fail"),
                notes="Mapped to the target's state picklist through a lookup table.",
            ),
            _f(
                "billing_postal_code",
                ["Zip_Code"],
                _s("trim", collapse_inner=True),
                _s(
                    "regex_validate",
                    pattern=r"[0-9]{5}(-[0-9]{4})?",
                    message="ZIP code must be 12345 or 12345-6789",
                ),
            ),
            _f(
                "phone",
                ["Phone_Number"],
                _s("phone_format"),
                notes="Non-digits removed, formatted (XXX) XXX-XXXX.",
            ),
            _f("email", ["Email_Address"], _s("email")),
            _f(
                "legacy_created_date",
                ["Creation_Date"],
                _s("parse_date", formats=DATE_FORMATS, output="datetime"),
                notes="CreatedDate is system-generated in the target; kept as a legacy field.",
            ),
            _f(
                "account_status",
                ["Status"],
                _s("trim", collapse_inner=True),
                _s("upper"),
                _s("value_map", lookup="account-status", on_missing="fail"),
                required=True,
                notes="1 → Active, 0 → Inactive (legacy A/I too).",
            ),
            _f("description", ["Legacy_Notes"], _s("truncate", length=32000)),
            _f("legacy_uuid", [], _s("uuid_from_key", scope="accounts")),
        ],
    },
    {
        "name": "contacts",
        "source_table": "contacts",
        "target_table": "contacts",
        "source_key": ["Contact_ID"],
        "external_id": "legacy_contact_id",
        "load_mode": "upsert",
        "load_order": 1,
        "watermark_column": "Last_Modified",
        "notes": "People at customers; parent account remapped to the new account id.",
        "fields": [
            _f("legacy_contact_id", ["Contact_ID"], _s("cast", to="text"), required=True),
            _f(
                "account_id",
                ["Customer_ID"],
                _s("reference_lookup", entity="accounts"),
                required=True,
                notes="Old Customer_ID → new accounts.id.",
            ),
            _f(
                "first_name",
                ["First_Name"],
                _s("trim", collapse_inner=True),
                _s("title"),
                _s("truncate", length=40),
            ),
            _f(
                "last_name",
                ["Last_Name"],
                _s("trim", collapse_inner=True),
                _s("title"),
                _s("truncate", length=80),
                required=True,
            ),
            _f("email", ["Email"], _s("email")),
            _f("phone", ["Phone"], _s("phone_format")),
            _f("title", ["Title"], _s("trim", collapse_inner=True), _s("truncate", length=128)),
        ],
    },
    {
        "name": "orders",
        "source_table": "orders",
        "target_table": "orders",
        "source_key": ["Order_ID"],
        "external_id": "legacy_order_id",
        "load_mode": "upsert",
        "load_order": 2,
        "watermark_column": "Last_Modified",
        "notes": "Orders; parent contact remapped to the new contact id.",
        "fields": [
            _f("legacy_order_id", ["Order_ID"], _s("cast", to="text"), required=True),
            _f(
                "contact_id",
                ["Contact_ID"],
                _s("reference_lookup", entity="contacts"),
                required=True,
                notes="Old Contact_ID → new contacts.id.",
            ),
            _f("order_date", ["Order_Date"], _s("parse_date", formats=DATE_FORMATS, output="date")),
            _f(
                "total_amount",
                ["Total_Amount"],
                _s("regex_replace", pattern=r"[$ ]", replacement=""),
                _s("cast", to="decimal", scale=2, thousands_separator=","),
            ),
            _f(
                "currency",
                ["Currency"],
                _s("trim", collapse_inner=True),
                _s("upper"),
                default="USD",
            ),
            _f("status", ["Status"], _s("trim", collapse_inner=True), _s("title")),
        ],
    },
]

VALIDATION_RULES = [
    (
        "Customer count in expected range",
        "pre",
        "row_count_range",
        "accounts",
        "",
        {"min": 1, "max": 5_000_000},
        "blocking",
    ),
    ("Customer_ID unique", "pre", "unique", "accounts", "Customer_ID", {}, "blocking"),
    (
        "Customer names ≥ 99% complete",
        "pre",
        "completeness",
        "accounts",
        "Cust_Name",
        {"min_pct": 99.0},
        "warning",
    ),
    (
        "E-mail format",
        "pre",
        "format",
        "accounts",
        "Email_Address",
        {"pattern": "email"},
        "warning",
    ),
    (
        "Account count matches (≤ 5% tolerance)",
        "post",
        "row_count_match",
        "accounts",
        "",
        {"tolerance_pct": 5.0},
        "blocking",
    ),
    (
        "Accounts per status match",
        "post",
        "category_count_match",
        "accounts",
        "account_status",
        {},
        "blocking",
    ),
    (
        "Order totals match",
        "post",
        "sum_match",
        "orders",
        "total_amount",
        {"tolerance": 0.01},
        "blocking",
    ),
    (
        "Contacts point at migrated accounts",
        "post",
        "referential_integrity",
        "contacts",
        "account_id",
        {"parent": "accounts"},
        "blocking",
    ),
    ("5% sample field-by-field", "post", "sample_compare", "accounts", "", {"pct": 5.0}, "warning"),
    ("Ledger checksums reconcile", "post", "checksum", "accounts", "", {}, "blocking"),
]

UAT_CASES = [
    (
        "Search for a customer by account number",
        "Open the new CRM, search for account number 1001.",
        "The account shows the legacy name in title case, billing address and status.",
    ),
    (
        "Contacts are linked to their account",
        "Open a migrated account and list its contacts.",
        "Every contact from the legacy system for that customer appears.",
    ),
    (
        "Order history totals",
        "Open a contact with orders; compare totals with the legacy report.",
        "Order totals and dates equal the legacy values.",
    ),
]

PHASES = [
    ("Planning & Analysis", 2, "Data profiling complete, mapping document finalised"),
    ("Development & ETL", 4, "Transformation rules coded, validation rules defined"),
    ("Testing & QA", 3, "Dry runs clean, integration testing complete"),
    ("User Acceptance Testing", 2, "UAT executed, defects resolved, UAT sign-off"),
    ("Pre-Production Migration", 1, "Full rehearsal on staging, performance verified"),
    ("Production Cutover", 1, "Production run, post-migration validation, go-live"),
]


def _install_entity(plan: Plan, spec: dict) -> None:
    fields = spec.pop("fields")
    entity = EntityMapping.objects.create(plan=plan, target_key="id", **spec)
    for position, f in enumerate(fields):
        field = FieldMapping.objects.create(
            entity=entity,
            target_column=f["target"],
            source_columns=f["sources"],
            default_value=f["default"],
            required=f["required"],
            position=position,
            notes=f["notes"],
        )
        RuleStep.objects.bulk_create(
            RuleStep(field=field, position=i, rule=s["rule"], params=s["params"])
            for i, s in enumerate(f["steps"])
        )


def _install_lookups(plan: Plan, us_states: dict[str, str]) -> None:
    states = LookupTable.objects.create(
        plan=plan, name="us-states", description="US state codes → target picklist values."
    )
    LookupEntry.objects.bulk_create(
        LookupEntry(table=states, key=k, value=v) for k, v in sorted(us_states.items())
    )
    status = LookupTable.objects.create(
        plan=plan, name="account-status", description="Legacy status codes → Active / Inactive."
    )
    LookupEntry.objects.bulk_create(
        LookupEntry(table=status, key=k, value=v) for k, v in STATUS_MAP.items()
    )


def _install_milestones(plan: Plan, start: dt.date) -> None:
    for position, (phase, weeks, deliverable) in enumerate(PHASES):
        end = start + dt.timedelta(weeks=weeks) - dt.timedelta(days=1)
        Milestone.objects.create(
            plan=plan, phase=phase, start=start, end=end, deliverable=deliverable, position=position
        )
        start = end + dt.timedelta(days=1)


def _install_checks(plan: Plan) -> None:
    for name, phase, kind, entity, column, params, severity in VALIDATION_RULES:
        ValidationRule.objects.create(
            plan=plan,
            name=name,
            phase=phase,
            kind=kind,
            entity=entity,
            column=column,
            params=params,
            severity=severity,
        )
    for position, (title, steps, expected) in enumerate(UAT_CASES):
        UATTestCase.objects.create(
            plan=plan, title=title, steps=steps, expected_result=expected, position=position
        )


@transaction.atomic
def demo_plan_install(
    *, source: System, target: System, owner, us_states: dict[str, str], today: dt.date
) -> tuple[Plan, bool]:
    """Create the demo plan once (idempotent: an existing plan is returned untouched)."""
    existing = Plan.objects.filter(slug=PLAN_SLUG).first()
    if existing is not None:
        return existing, False
    plan = Plan.objects.create(
        name="Legacy CRM → New CRM",
        slug=PLAN_SLUG,
        source=source,
        target=target,
        strategy="hybrid",
        batch_size=2_000,
        parallelism=2,
        failure_threshold_pct=30,
        owner=owner,
        description="Customer accounts, contacts and orders from the legacy CRM into the new "
        "CRM, following the customer plan's field-mapping table (section 3.1).",
    )
    _install_lookups(plan, us_states)
    for spec in ENTITIES:
        _install_entity(plan, {**spec, "fields": list(spec["fields"])})
    monday = today + dt.timedelta(days=(7 - today.weekday()) % 7)
    _install_milestones(plan, monday)
    _install_checks(plan)
    return plan, True
