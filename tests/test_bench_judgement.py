"""The bench's judgement compares like with like: medians of ours against medians of the
references (issue 20's method: medians of 3)."""

from bench.judgement import judge


def _ref(name: str, runs: list[tuple[float, float]]) -> dict:
    walls = sorted(w for w, _ in runs)
    return {
        "name": name,
        "seconds": walls[len(walls) // 2],
        "runs": [{"seconds": w, "machine_busy_seconds": b} for w, b in runs],
    }


def test_busy_ratio_takes_the_references_median_not_its_first_run():
    # three SQL-pipe runs whose first was the cheapest (30.8 core-s): the median is 34.4
    refs = {"sql_pipe": _ref("SQL-transform COPY pipe", [(21.8, 30.8), (23.4, 34.4), (23.9, 35.4)])}
    ours = {"seconds": 22.8, "cpu_seconds": {"machine_busy": 41.9}}
    checks = judge(1_000_000, refs, ours)["checks"]
    assert checks["sql_pipe_busy"]["value"] == 41.9 / 34.4
    assert checks["sql_pipe"]["ratio"] == 22.8 / 23.4


def test_a_single_reference_run_is_its_own_median():
    refs = {"sql_pipe": _ref("SQL-transform COPY pipe", [(20.0, 28.0)])}
    ours = {"seconds": 24.0, "cpu_seconds": {"machine_busy": 42.0}}
    assert judge(1_000_000, refs, ours)["checks"]["sql_pipe_busy"]["value"] == 42.0 / 28.0
