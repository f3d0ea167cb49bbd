"""YAML text to data with positions: values, positions, and bounded handling of hostile input."""

from __future__ import annotations


import pytest

from reconciler.diagnostics import Diagnostic
from reconciler.load.yaml_source import MAX_DEPTH, FileParse, YamlDocument, parse_documents


def parse(text: str | bytes) -> tuple[list[YamlDocument], list[Diagnostic]]:
    data = text.encode() if isinstance(text, str) else text
    problems: list[Diagnostic] = []
    docs = list(parse_documents(data, data.decode("utf-8", "replace"), file="f.yaml", problems=problems))
    return docs, problems


def billion_laughs(levels: int = 9) -> str:
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for level in range(1, levels):
        name, previous = chr(97 + level), chr(96 + level)
        text += f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]\n"
    return text


def test_scalars_follow_the_yaml_core_schema() -> None:
    """Plain scalars become int, float, bool and null as in PyYAML's safe loader; quoted ones stay text.

    Numbers in YAML 1.1's non-decimal forms (``0x1f``, ``1_000``) are still read as the core schema says,
    but each is an error at its position (issue 20: such forms silently change ids); see below."""
    (doc,), problems = parse('a: [1, 0x1f, 1_000, 2.5, true, no, ~, null, "7", plain]\n')
    assert doc.value == {"a": [1, 31, 1000, 2.5, True, False, None, None, "7", "plain"]}
    assert [(p.line, p.col, p.message) for p in problems] == [
        (1, 8, 'a[1]: `0x1f` is a hexadecimal number, read as 31; quote it ("0x1f") if it is text such as an id, or '
               'write the plain decimal number meant'),
        (1, 14, "a[2]: `1_000` has `_` between digits, which YAML 1.1 drops: it is read as 1000; quote it "
                '("1_000") if it is text such as an id, or write the plain decimal number meant'),
    ]
    assert doc.yaml_problems


@pytest.mark.parametrize("text", ["0", "-0", "+5", "142", "2.5", "-1.5", ".5", "5.", "1.0e-3", "1.0E+3", "01.5",
                                  '"0216"', "'2:22'", "!!str 0x8e", "!!int 142", "!!float 2"])
def test_plain_decimal_numbers_and_quoted_text_are_accepted(text: str) -> None:
    """Plain decimal integers and floats, and any quoted (or ``!!str``) text, raise no problem."""
    (doc,), problems = parse(f"n: {text}\n")
    assert problems == [], problems


NON_DECIMAL = {
    "campaignId: 0216": ("`0216` has a leading zero, so YAML 1.1 reads it as the octal number 142", 142),
    "campaignId: 2:22": ("`2:22` is read by YAML 1.1 as the base-60 (sexagesimal) number 142", 142),
    "campaignId: 1_4_2": ("`1_4_2` has `_` between digits, which YAML 1.1 drops: it is read as 142", 142),
    "campaignId: 0x8e": ("`0x8e` is a hexadecimal number, read as 142", 142),
    "campaignId: -0b10001110": ("`-0b10001110` is a binary number, read as -142", -142),
    "campaignId: !!int 0216": ("`0216` has a leading zero, so YAML 1.1 reads it as the octal number 142", 142),
    "campaignId: 1_4.2": ("`1_4.2` has `_` between digits, which YAML 1.1 drops: it is read as 14.2", 14.2),
    "campaignId: 2:22.5": ("`2:22.5` is read by YAML 1.1 as the base-60 (sexagesimal) number 142.5", 142.5),
}


@pytest.mark.parametrize("line", list(NON_DECIMAL), ids=list(NON_DECIMAL))
def test_numbers_not_written_as_plain_decimals_are_errors_at_the_value(line: str) -> None:
    """Octal (``0216``), sexagesimal (``2:22``), ``_``-separated, hexadecimal and binary numbers change what
    was meant (all of these are 142): an error at the value, naming its path, asking to quote or rewrite."""
    (doc,), problems = parse(f"spec:\n  backend: yate\n  {line}\n")
    fragment, read_as = NON_DECIMAL[line]
    written = line.split(": ", 1)[1].removeprefix("!!int ")
    assert [(p.line, p.col) for p in problems] == [(3, 15)]
    assert problems[0].message == (f"spec.campaignId: {fragment}; quote it (\"{written}\") if it is text such as an "
                                   "id, or write the plain decimal number meant")
    assert doc.value["spec"]["campaignId"] == read_as


def test_a_number_under_auth_is_refused_without_repeating_it() -> None:
    """``instanceId: 010`` (read as 8) is refused; under ``auth`` the value is not shown (it could be a secret)."""
    _, problems = parse("spec:\n  auth:\n    instanceId: 010\n    privateKey: 0x1234abcd\n")
    assert [(p.line, p.col, p.message) for p in problems] == [
        (3, 17, "spec.auth.instanceId: a number written with a leading zero is read by YAML 1.1 as a different "
                "number; quote the value if it is text, or write the plain decimal number meant"),
        (4, 17, "spec.auth.privateKey: a number written in hexadecimal is read by YAML 1.1 as a different number; "
                "quote the value if it is text, or write the plain decimal number meant"),
    ]
    assert "1234abcd" not in problems[1].message and "010" not in problems[0].message


@pytest.mark.parametrize("text", [".nan", ".NaN", ".inf", "-.inf", "+.Inf", "1.0e+400", "-1.0e+999", "!!float nan",
                                  "!!float -inf", "!!float 1e999"])
def test_non_finite_numbers_are_errors_at_the_value(text: str) -> None:
    """NaN and infinities (written, or overflowing) pass JSON Schema bounds, so the loader refuses every one."""
    (doc,), problems = parse(f"spec:\n  rate: {{perSecond: {text}}}\n  list: [1, {text}]\n")
    written = text.removeprefix("!!float ")
    tail = f"expected a finite number, found `{written}` (YAML's .nan and .inf, or a number too large to represent, " \
           "are not accepted)"
    assert [(p.line, p.col, p.message) for p in problems] == [
        (2, 21, f"spec.rate.perSecond: {tail}"), (3, 13, f"spec.list[1]: {tail}")]


def test_a_non_finite_number_in_an_anchor_is_reported_once_where_it_is_written() -> None:
    """A value reached through an alias or a merge is reported at the anchored original."""
    (doc,), problems = parse("base: &b {perSecond: .nan}\nrate: {<<: *b}\nother: *b\n")
    assert [(p.line, p.col) for p in problems] == [(1, 22)]
    assert problems[0].message.startswith("base.perSecond: expected a finite number")


def test_timestamps_stay_text() -> None:
    """An unquoted date-time is kept as written, for the schema's date-time check."""
    (doc,), _ = parse("begin: 2027-03-01T01:00:00Z\n")
    assert doc.value == {"begin": "2027-03-01T01:00:00Z"}


def test_keys_are_always_strings() -> None:
    """``1:``, ``true:`` and ``null:`` keys are the text written, never numbers or booleans."""
    (doc,), _ = parse("1: a\ntrue: b\nnull: c\n")
    assert doc.value == {"1": "a", "true": "b", "null": "c"}


def test_positions_of_values_and_keys_are_one_based() -> None:
    """``at`` points at a value, ``key_at`` at the key naming it, for mappings and list items."""
    (doc,), _ = parse("spec:\n  url: http://x\n  ports: [1, 2]\n")
    assert doc.at(("spec", "url")) == (2, 8)
    assert doc.key_at(("spec", "url")) == (2, 3)
    assert doc.at(("spec", "ports", 1)) == (3, 14)
    assert doc.at(()) == (1, 1)


def test_a_missing_path_falls_back_to_its_nearest_ancestor() -> None:
    """Asking for a position below a scalar or a missing key gives the deepest known node."""
    (doc,), _ = parse("spec:\n  url: http://x\n")
    assert doc.at(("spec", "missing", 3)) == doc.at(("spec",))


def test_several_documents_keep_their_own_positions() -> None:
    """Positions are per document; empty documents are skipped but keep the numbering."""
    docs, _ = parse("a: 1\n---\n---\nb: 2\n")
    assert [(d.index, d.value) for d in docs] == [(0, {"a": 1}), (2, {"b": 2})]
    assert docs[1].at(("b",)) == (4, 4)


def test_merge_keys_copy_what_is_not_written() -> None:
    """``<<`` merges a mapping; keys written in place win."""
    (doc,), problems = parse("base: &base {a: 1, b: 2}\nthis: {<<: *base, b: 3}\n")
    assert doc.value["this"] == {"a": 1, "b": 3}
    assert problems == []


def test_duplicate_key_is_reported_at_the_second_key() -> None:
    """The repeat is named with the position of the first."""
    (doc,), problems = parse("a: 1\nb: 2\na: 3\n")
    assert [(p.line, p.col) for p in problems] == [(3, 1)]
    assert "first written at line 1, column 1" in problems[0].message
    assert doc.yaml_problems


@pytest.mark.timeout(20)  # expanding the aliases would take hours: the bound catches that, not a speed figure
def test_billion_laughs_is_refused_without_expanding() -> None:
    """Aliases that expand beyond the budget stop the document without expanding anything."""
    docs, problems = parse(billion_laughs())
    assert docs == []
    assert "alias expansion too large" in problems[0].message


@pytest.mark.timeout(20)  # a bound against a hang, not a speed figure (bench/validate_bench.py measures)
def test_deep_nesting_is_refused_without_a_crash() -> None:
    """A hundred thousand nested lists give one diagnostic and no crash of the C parser."""
    _, problems = parse("a: " + "[" * 100_000 + "]" * 100_000 + "\n")
    assert len(problems) == 1
    assert f"nested deeper than {MAX_DEPTH} levels" in problems[0].message


@pytest.fixture(params=["C", "pure-Python"])
def either_loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a test with PyYAML's C loader (when this PyYAML has one) and with its pure-Python loader."""
    import yaml

    from reconciler.load import yaml_source
    if request.param == "C":
        if not hasattr(yaml, "CSafeLoader"):
            pytest.skip("this PyYAML was built without libyaml")
        monkeypatch.setattr(yaml_source, "Loader", yaml.CSafeLoader)
    else:
        monkeypatch.setattr(yaml_source, "Loader", yaml.SafeLoader)
    return str(request.param)


FLOW_TOO_DEEP = {n: "a: " + "[" * n + "]" * n + "\n" for n in (MAX_DEPTH + 1, 999, 1_000, 1_001, 5_000, 100_000)}
BLOCK_TOO_DEEP = {n: "a:\n" + "".join("  " * (k + 1) + "-\n" for k in range(n)) for n in (MAX_DEPTH + 1, 1_200)}


@pytest.mark.parametrize("text", [*FLOW_TOO_DEEP.values(), *BLOCK_TOO_DEEP.values()],
                         ids=[*(f"flow-{n}" for n in FLOW_TOO_DEEP), *(f"block-{n}" for n in BLOCK_TOO_DEEP)])
def test_nesting_limit_is_ours_whatever_the_pyyaml(either_loader: str, text: str) -> None:
    """Too deep, flow or block, at any depth: our one diagnostic at the 65th opening, never PyYAML's own
    limit (PyYAML 6.0.4's libyaml stops flow input at 1,000 levels, scanning ahead of its events)."""
    _, problems = parse(text)
    assert [p.message for p in problems] == [
        f"document nested deeper than {MAX_DEPTH} levels; the rest of the file is not read"]
    flow = text.startswith("a: [")
    assert (problems[0].line, problems[0].col) == ((1, 3 + MAX_DEPTH) if flow else (MAX_DEPTH + 1, 2 * MAX_DEPTH + 1))


def test_nesting_at_the_limit_is_accepted(either_loader: str) -> None:
    """Exactly 64 levels (the mapping and 63 lists) read without a problem."""
    (doc,), problems = parse("a: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n")
    assert problems == []
    levels, node = 2, doc.value["a"]  # the mapping, then the outermost list
    while node:
        levels, node = levels + 1, node[0]
    assert levels == MAX_DEPTH


def test_a_syntax_error_in_shallow_flow_keeps_the_parsers_message(either_loader: str) -> None:
    """The depth re-check runs on any syntax error, but a shallow one keeps its own message and place."""
    _, problems = parse("a: [[1, 2]\nb: 3\n")
    assert len(problems) == 1 and problems[0].message.startswith("YAML syntax error")


def test_aliases_cannot_smuggle_depth() -> None:
    """An alias to a deep structure placed deep counts the anchored depth too."""
    deep = "[" * 40 + "]" * 40
    _, problems = parse(f"a: &deep {deep}\nb: " + "[" * 30 + "*deep" + "]" * 30 + "\n")
    assert any("through alias `*deep`" in p.message for p in problems)


def test_unknown_tags_are_reported_at_the_tag() -> None:
    """``!!python/...`` and local tags are refused where they are written; nothing is constructed."""
    _, problems = parse("a: !!python/object/apply:os.system ['true']\nb: !custom x\n")
    assert [(p.line, p.col) for p in problems] == [(1, 4), (2, 4)]
    assert "!!python/object/apply:os.system" in problems[0].message


def test_syntax_error_keeps_the_documents_before_it() -> None:
    """A syntax error ends the file with one diagnostic; earlier documents are still returned."""
    docs, problems = parse("a: 1\n---\nb: [1\n")
    assert [d.value for d in docs] == [{"a": 1}]
    assert len(problems) == 1 and problems[0].message.startswith("YAML syntax error")


def test_byte_order_mark_is_accepted() -> None:
    """A UTF-8 BOM at the start is ignored."""
    (doc,), problems = parse(b"\xef\xbb\xbfa: 1\n")
    assert doc.value == {"a": 1} and problems == []


@pytest.mark.parametrize("breakage", ["key: [unclosed\n", "key: \x01\n", "a:\n" + "".join(
    "  " * (n + 1) + "- \n" for n in range(MAX_DEPTH + 2))], ids=["syntax", "forbidden-character", "too-deep"])
def test_every_way_a_file_is_cut_short_is_told(breakage: str) -> None:
    """The loader softens "not declared" errors for files it could not read to the end, whatever stopped it."""
    data = ("kind: Backend\n---\n" + breakage).encode()
    outcome = FileParse()
    problems: list[Diagnostic] = []
    list(parse_documents(data, data.decode(), file="f.yaml", problems=problems, outcome=outcome))
    assert (outcome.cut_short, len(problems)) == (True, 1)


def test_a_file_read_to_its_end_is_not_cut_short() -> None:
    outcome = FileParse()
    data = b"kind: Backend\n---\nkind: Campaign\n"
    assert len(list(parse_documents(data, data.decode(), file="f.yaml", problems=[], outcome=outcome))) == 2
    assert not outcome.cut_short
