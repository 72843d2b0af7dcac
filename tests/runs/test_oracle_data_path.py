"""Oracle test of the whole data path (stateful, hypothesis), over the WHOLE rule registry.

Every example builds a plan with one field per registered rule type (params drawn by
hypothesis; the set of rule types comes from ``REGISTRY``, so a new rule without an oracle or a
strategy (in oracle_strategies.py) fails ``test_every_registered_rule_has_an_oracle``), plus
fields copying hostile values into typed columns (char(n), varchar(n), numeric(p,s), timestamptz,
boolean, uuid, json). The state machine driving the real system is oracle_machine.py.
Random sources with hostile values (NULL, '', whitespace incl. tab/CR/LF/NEL/unicode spaces,
``\\N``, quotes, unicode, 5,000-character text, unicode digits, edge numbers, zoned timestamps)
go through the real services — ``run_create`` (load with upsert, delta),
``failed_record_correct`` + ``failed_record_reprocess`` — into a PostgreSQL or an SQLite
target. After every step the target is compared by key and cell with the independent oracle
(tests/runs/oracle_model.py: plain Python, never the engine's rules, validation or canonical
forms), the error queue key by key (failing fields, categories, whole source rows), and the
run report's verdict may be Pass only when target and oracle agree; a cell changed behind the
run's back must make the report (reconciled again) say Fail.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from runs.engine.rules import REGISTRY
from tests.runs.oracle_machine import STATS, DataPath
from tests.runs.oracle_model import ORACLE
from tests.runs.oracle_strategies import FIELDS
from tests.support import pg

pytestmark = [pytest.mark.oracle, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

settings.register_profile(
    "oracle",
    # per target kind; each example is 2-4 real runs of ~30 fields (ORACLE_EXAMPLES=20 to hunt)
    max_examples=int(os.environ.get("ORACLE_EXAMPLES", "2")),
    stateful_step_count=3,
    deadline=None,
    derandomize=not os.environ.get("ORACLE_RANDOM"),  # ORACLE_RANDOM=1: new examples each time
    # no shrinking: each step is a real run; the failing example is printed as found
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)


def test_every_registered_rule_has_an_oracle_and_a_strategy():
    """A rule added to the registry without an oracle and a strategy here fails this test."""
    assert set(ORACLE) == set(REGISTRY)
    assert set(FIELDS) == set(REGISTRY)


@pytest.fixture
def oracle_pg_db():
    with pg.throwaway_database("oracle_tgt") as name:
        yield name


@pytest.mark.parametrize("kind", ["postgresql", "sqlite"])
def test_oracle_data_path(kind, eager_celery, tmp_path, request):
    DataPath.kind, DataPath.tmp = kind, tmp_path
    DataPath.pg_db = request.getfixturevalue("oracle_pg_db") if kind == "postgresql" else ""
    before = dict(STATS)
    run_state_machine_as_test(DataPath, settings=settings.get_profile("oracle"))
    figures = {k: v - before[k] for k, v in STATS.items()}
    print(f"oracle {kind}: {figures}")  # shown with -s; the figures go in the report
    examples = settings.get_profile("oracle").max_examples
    assert STATS["examples"] - before["examples"] >= examples
    assert figures["runs"] > examples
    assert figures["coerced"] and figures["tampered"] and figures["reprocessed"]
