"""Phone numbers never reach the dashboard whole: ``mask_number`` and ``mask_numbers_in``."""

from __future__ import annotations

import pytest

from reconciler.masking import mask_number, mask_numbers_in


@pytest.mark.parametrize("written", ["+491701231234", "00491701231234", "491701231234", "+49 170 1231234",
                                     "+49-170-123-1234"])
def test_a_number_keeps_its_country_code_operator_range_and_last_four(written: str) -> None:
    assert mask_number(written) == "+49 170 ***1234"


@pytest.mark.parametrize(("written", "shown"), [
    ("+12125551234", "+1 212 ***1234"), ("+584140000001", "+58 414 ***0001"), ("+35312345678", "+353 ***5678"),
    ("01701231234", "0170 ***1234"), ("10086", "***86"), ("1234", "***"), ("", "***"), ("+4412", "***"),
])
def test_every_form_hides_at_least_three_digits(written: str, shown: str) -> None:
    assert mask_number(written) == shown
    digits = [c for c in written if c.isdigit()]
    assert sum(c.isdigit() for c in shown) <= max(len(digits) - 3, 0)


def test_numbers_inside_text_are_masked_and_dates_ids_and_keys_are_not() -> None:
    text = ("refused 491700000001 and +49 170 1234567; gw-00001 at 2027-01-02T01:00:00Z, campaign 147, "
            "user_id 4611686018427387903, revision 0a1b2c3d4e5f60718293")
    assert mask_numbers_in(text) == (
        "refused +49 170 ***0001 and +49 170 ***4567; gw-00001 at 2027-01-02T01:00:00Z, campaign 147, "
        "user_id 4611686018427387903, revision 0a1b2c3d4e5f60718293")
