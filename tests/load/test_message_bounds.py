"""Every size has a bound (issue 20): each recipient's message, as rendered, must fit its backend
(its descriptor's ``message_bound``: characters, UTF-8 bytes, SMS segments), checked when loading, at the text, the inline
recipient or the recipient file's own line; and a recipient file's line has a length limit of its own.
"""

from __future__ import annotations

import builtins
from pathlib import Path

import pytest

from reconciler.backends.protocol import MessageBound, sms_segments
from reconciler.backends.registry import descriptor_for
from reconciler.load import load_desired_state
from reconciler.load import recipients as recipients_module
from reconciler.load.recipients import MAX_LINE_BYTES
from reconciler.sandbox.sms_gateway.text import choose_encoding, segment_count

GATEWAY = descriptor_for("sms-gateway").message_bound
OGANGI = descriptor_for("ogangi").message_bound
BACKENDS = """\
apiVersion: reconciler/v1
kind: Backend
metadata: {name: gw}
spec:
  type: sms-gateway
  url: https://127.0.0.1:8704
  auth: {username: admin, password: {env: GW_PASSWORD}}
---
apiVersion: reconciler/v1
kind: Backend
metadata: {name: og}
spec:
  type: ogangi
  url: http://127.0.0.1:8703
  auth: {instanceId: 7, publicKey: sandbox-public, privateKey: {env: OGANGI_KEY}}
"""


def campaign(name: str, backend: str, text: str, recipients: str = "{file: r.csv}") -> str:
    sender = '\n  from: "12345"' if backend == "og" else ""
    return (f"---\napiVersion: reconciler/v1\nkind: Campaign\nmetadata: {{name: {name}}}\nspec:\n  backend: {backend}\n"
            f"  text: \"{text}\"{sender}\n  recipients: {recipients}\n")


def load(tmp_path: Path, yaml_text: str, csv_rows: list[str] | None = None) -> list[tuple[str, int, int, str]]:
    (tmp_path / "c.yaml").write_text(BACKENDS + yaml_text, encoding="utf-8")
    if csv_rows is not None:
        (tmp_path / "r.csv").write_text("\n".join(csv_rows) + "\n", encoding="utf-8")
    result = load_desired_state([tmp_path / "c.yaml"], root=tmp_path)
    return [(Path(d.file).name, d.line, d.col, d.message) for d in result.diagnostics]


@pytest.mark.parametrize("text", ["hi", "a" * 160, "a" * 161, "{" * 80, "{" * 81, "é" * 160, "ж" * 70, "ж" * 71,
                                  "😀" * 35, "😀" * 36, "x" * 1500, "Grüße aus Köln ✓" * 10])
def test_segments_are_counted_as_the_gateway_simulator_counts_them(text: str) -> None:
    """GSM 7-bit (160/153, extension characters count twice) or UCS-2 (70/67 UTF-16 units)."""
    assert sms_segments(text) == segment_count(text, choose_encoding(text, None))


def test_a_declared_encoding_decides_how_segments_are_counted() -> None:
    assert sms_segments("a" * 100) == 1
    assert sms_segments("a" * 100, "unicode") == 2
    assert sms_segments("ж" * 100, "gsm-7bit") == 1


@pytest.mark.parametrize(("bound", "text", "why"), [
    (GATEWAY, "a" * 1500, None),
    (GATEWAY, "a" * 1501, "is 1,501 characters long; at most 1,500 fit"),
    (GATEWAY, "ж" * 750, None),
    (GATEWAY, "ж" * 751, "is 1,502 UTF-8 bytes long; at most 1,500 fit"),
    (OGANGI, "a" * 1000, None),
    (OGANGI, "a" * 1001, "is 1,001 characters long; at most 1,000 fit"),
    (OGANGI, "€" * 667, "is 2,001 UTF-8 bytes long; at most 2,000 fit"),
    (OGANGI, "😀" * 333 + "a" * 667, "takes 20 SMS segments; at most 15 fit"),
    (OGANGI, "😀" * 300 + "ж" * 400, None),  # 2,000 bytes, 1,000 UTF-16 units: 15 segments
    (OGANGI, "x\udc80", "holds U+DC80, a lone surrogate, which cannot be encoded as UTF-8"),
], ids=["gw-1500", "gw-1501-chars", "gw-1500-bytes", "gw-1502-bytes", "og-1000", "og-1001", "og-2001-bytes",
        "og-20-segments", "og-15-segments", "og-surrogate"])
def test_a_bound_says_why_a_message_does_not_fit(bound: MessageBound, text: str, why: str | None) -> None:
    assert bound.problem(text) == why


def test_a_csv_row_whose_message_is_too_long_is_an_error_at_its_line(tmp_path: Path) -> None:
    """The 9 MB parameter of issue 20, scaled down: each row over the bound, at its line and number column."""
    rows = ["number,city", "+491700000001,Mitte", "+491700000002," + "p" * 1_490, "+491700000003,Wedding",
            " +491700000004," + "q" * 1_476]
    assert load(tmp_path, campaign("notice", "gw", "Outage in #param#."), rows) == [
        ("r.csv", 3, 1, "campaign `notice`: the message for `+491700000002` is 1,501 characters long; at most 1,500 "
                        "fit on sms-gateway backend `gw`; shorten the text or this row's parameters"),
    ]
    rows[4] = " +491700000004," + "q" * 1_490
    assert [(f, line, col) for f, line, col, _ in load(tmp_path, campaign("notice", "gw", "Outage in #param#."), rows)
            ] == [("r.csv", 3, 1), ("r.csv", 5, 2)]


def test_one_file_is_checked_for_each_campaign_and_backend_that_uses_it(tmp_path: Path) -> None:
    """The same row fits the SMS gateway and not Ogangi: one error, naming the Ogangi campaign."""
    rows = ["+491700000001,Mitte", "+491700000002," + "p" * 1_200]
    found = load(tmp_path, campaign("gw-notice", "gw", "In #param#") + campaign("og-notice", "og", "In #param#"), rows)
    assert found == [("r.csv", 2, 1, "campaign `og-notice`: the message for `+491700000002` is 1,203 characters long; "
                                     "at most 1,000 fit on ogangi backend `og`; shorten the text or this row's "
                                     "parameters")]


def test_only_as_many_parameters_as_placeholders_count(tmp_path: Path) -> None:
    """A long second parameter with a single ``#param#`` is never sent, so it is not an error."""
    assert load(tmp_path, campaign("notice", "og", "In #param#"), ["+491700000001,Mitte," + "z" * 5_000]) == []


def test_the_file_is_read_only_once_when_no_message_can_be_too_long(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The scan remembers the longest parameters; a file whose longest row fits is not streamed again."""
    opened: list[str] = []
    original = builtins.open

    def counting(path: object, *args: object, **kwargs: object) -> object:
        if str(path).endswith("r.csv"):
            opened.append(str(path))
        return original(path, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(recipients_module, "open", counting, raising=False)
    rows = [f"+4917000{i:05d},district {i}" for i in range(1_000)]
    assert load(tmp_path, campaign("notice", "gw", "In #param#") + campaign("other", "og", "In #param#"), rows) == []
    assert len(opened) == 1


def test_problems_in_one_file_are_capped_per_campaign(tmp_path: Path) -> None:
    rows = [f"+4917000{i:05d}," + "w" * 1_600 for i in range(60)]
    found = load(tmp_path, campaign("notice", "gw", "In #param#"), rows)
    assert len(found) == 51
    assert found[-1] == ("r.csv", 51, 1, "campaign `notice`: ... and 10 more rows whose message is too long (only the "
                                         "first 50 are shown)")


def test_an_inline_recipient_whose_message_is_too_long_is_an_error_at_it(tmp_path: Path) -> None:
    inline = '\n    inline:\n      - {number: "+491700000001", params: [Mitte]}\n' \
             f'      - {{number: "+491700000002", params: [{"k" * 1_500}]}}'
    assert load(tmp_path, campaign("notice", "gw", "In #param#", recipients=inline)) == [
        ("c.yaml", 26, 9, "spec.recipients.inline[1]: the message for `+491700000002` is 1,503 characters long; at "
                          "most 1,500 fit on sms-gateway backend `gw`; shorten the text or its parameters")]


def test_a_text_that_cannot_fit_is_one_error_at_the_text(tmp_path: Path) -> None:
    """Too long whatever the parameters: reported once at ``spec.text``, not once per recipient."""
    rows = [f"+4917000{i:05d},x" for i in range(100)]
    assert load(tmp_path, campaign("notice", "og", "#param#" + "t" * 1_001), rows) == [
        ("c.yaml", 22, 9, "spec.text: the message is 1,001 characters long; at most 1,000 fit on ogangi backend `og` "
                          "even with empty parameters; shorten the text")]


def test_a_csv_line_over_the_limit_is_refused_and_the_lines_after_it_keep_their_numbers(tmp_path: Path) -> None:
    rows = ["+491700000001,Mitte", "+491700000002," + "x" * (MAX_LINE_BYTES + 10), "+491700000003,Pankow",
            "12345,short"]
    assert load(tmp_path, campaign("notice", "gw", "In #param#"), rows) == [
        ("r.csv", 2, 1, f"line is {MAX_LINE_BYTES + 25:,} bytes long, over the limit of 65,536 bytes per row (a number "
                        "and its parameters)"),
        ("r.csv", 4, 1, "phone number `12345` has 5 digits; expected 6 to 15"),
    ]
