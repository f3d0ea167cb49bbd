"""Recipient CSV files and gateway lists: streamed, checked row by row with their own line numbers."""

from __future__ import annotations

from pathlib import Path

from reconciler.load import iter_recipients
from reconciler.load.gateways import scan_gateway_file
from reconciler.load.recipients import number_problem, scan_recipients
from reconciler.model import Recipient


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_iter_recipients_streams_good_rows_with_line_numbers(tmp_path: Path) -> None:
    """The header, comments and blank lines are skipped; params are the remaining fields, trimmed."""
    path = write(tmp_path, "r.csv", "number,city\n# Berlin\n\n+491700000001, Mitte \n491700000002,\"Prenzlauer Berg, Nord\"\n")
    assert list(iter_recipients(path)) == [
        (4, Recipient("+491700000001", ("Mitte",))),
        (5, Recipient("491700000002", ("Prenzlauer Berg, Nord",))),
    ]


def test_iter_recipients_is_lazy(tmp_path: Path) -> None:
    """The file is read as it is consumed (a generator), never loaded whole."""
    path = write(tmp_path, "r.csv", "".join(f"+4917{n:08d}\n" for n in range(1000)))
    rows = iter_recipients(path)
    assert next(rows) == (1, Recipient("+491700000000"))


def test_first_row_with_digits_is_data_not_a_header(tmp_path: Path) -> None:
    """Only a first row whose first field holds no digit is a header."""
    path = write(tmp_path, "r.csv", "+491700000001\n+491700000002\n")
    assert scan_recipients(path, display="r.csv").count == 2


def test_scan_counts_good_unique_rows(tmp_path: Path) -> None:
    """The count excludes bad rows and repeats; ``+49...`` and ``49...`` are the same number."""
    path = write(tmp_path, "r.csv", "+491700000001\n491700000001\nabc\n+491700000002\n")
    scan = scan_recipients(path, display="r.csv")
    assert scan.count == 2
    assert [(d.line, d.message.split(";")[0]) for d in scan.diagnostics] == [
        (2, "duplicate recipient `491700000001` (first on line 1)"),
        (3, "phone number `abc` contains `a`"),
    ]


def test_problems_are_capped_per_file(tmp_path: Path) -> None:
    """A flood of bad rows gives the first few and one summary line."""
    path = write(tmp_path, "r.csv", "x1\n" * 500)
    scan = scan_recipients(path, display="r.csv", max_problems=5)
    assert len(scan.diagnostics) == 6
    assert scan.diagnostics[-1].message.startswith("... and 495 more problems")
    assert scan.diagnostics[-1].line == 6


def test_number_rules() -> None:
    """Numbers are an optional '+' and 6 to 15 digits."""
    assert number_problem("+491700000001") is None
    assert number_problem("123456") is None
    assert "has 5 digits" in (number_problem("12345") or "")
    assert "has 16 digits" in (number_problem("1" * 16) or "")
    assert "contains `-`" in (number_problem("+49-170") or "")
    assert number_problem("١٢٣٤٥٦٧") is not None  # non-ASCII digits are not phone digits


def test_gateway_file_reports_bad_ids_and_repeats_by_line(tmp_path: Path) -> None:
    """Ids are read one per line with comments removed; problems name their line."""
    path = write(tmp_path, "fleet.txt", "# fleet\ngw-00001  # roof\n\ngw-00001\nbad id\n")
    scan = scan_gateway_file(path, display="fleet.txt")
    assert scan.ids == ["gw-00001"]
    assert scan.lines == [2]
    assert [(d.line, d.col) for d in scan.diagnostics] == [(4, 1), (5, 1)]
