"""Every planner golden case in tests/planner/cases/ (a new case is a new file)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.planner.golden import check_expectations, load_case, plan_case

CASES = sorted((Path(__file__).parent / "cases").glob("*.yaml"))


@pytest.mark.parametrize("case_file", CASES, ids=[c.stem for c in CASES])
def test_golden_case(case_file: Path, tmp_path: Path) -> None:
    case = load_case(case_file)
    check_expectations(plan_case(case, tmp_path), case["expect"])


def test_there_are_at_least_forty_cases() -> None:
    assert len(CASES) >= 40
