"""Where a dry run would have passed the failure threshold: running totals, as a load checks."""

from __future__ import annotations

from runs.threshold import threshold_breach


def test_breach_is_the_first_batch_whose_running_rate_passes_the_threshold():
    batches = [(1, "accounts", 100, 5), (2, "accounts", 100, 20), (3, "contacts", 100, 0)]
    breach = threshold_breach(batches, 10)
    assert (breach.batch, breach.entity, breach.failed, breach.extracted) == (
        2,
        "accounts",
        25,
        200,
    )
    assert breach.message == (
        "A load would have aborted at batch 2: failure rate 12.5% > threshold 10% "
        "(25 of 200 rows failed by then; entity accounts)."
    )


def test_rate_equal_to_the_threshold_or_no_rows_is_no_breach():
    assert threshold_breach([(1, "a", 0, 0), (2, "a", 100, 10)], 10) is None
    assert threshold_breach([], 0) is None
