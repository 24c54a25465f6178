"""Personal data never reaches the prediction log, the training artifacts or the reference sample."""

from __future__ import annotations

import pytest

from pigeonhole.core.pii import mask


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Call 07700 900123 after 6", "Call <phone> after 6"),
        ("WhatsApp +44 7700 900123.", "WhatsApp <phone>."),
        ("mail jane.doe+ads@example.co.uk now", "mail <email> now"),
        ("photos at https://photos.example.com/42?x=1 and www.example.org", "photos at <url> and <url>"),
        ("(555) 123-4567", "<phone>"),
        ("call 555.123.4567", "call <phone>"),
        ("see http://example.com/a", "see <url>"),
        ("write to sales@my-shop.example.com", "write to <email>"),
        ("call 555.123.4567 or 555 123 4567", "call <phone> or <phone>"),
        ("+1 (555) 123 4567", "<phone>"),
        ("call 1o2o3o4o", "call <phone>"),  # letters for digits: exactly 4 real digits is a number
        ("HTTP://EXAMPLE.COM/x", "<url>"),
        ("see https://x.io", "see <url>"),
        ("www.shop.example", "<url>"),
        ("x@shop.my-brand.com", "<email>"),  # hyphens in any label of the domain
        ("a.b@c-d.e-f.org", "<email>"),
        ("first.last+tag@mail.example.co.uk.", "<email>."),
    ],
)
def test_contact_details_become_placeholders(text: str, expected: str) -> None:
    assert mask(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail john dot doe at gmail dot com today", "mail <email> today"),
        ("jane(at)mail(dot)com", "<email>"),
        ("jane [at] mail [dot] co [dot] uk", "<email>"),
        ("bob at example.com", "<email>"),
        ("JOHN AT GMAIL DOT COM", "<email>"),
        ("text o77oo 9oo 123 now", "text <phone> now"),
        ("O7700-9OO-l23", "<phone>"),
        ("ring zero seven seven zero zero nine zero zero", "ring <phone>"),
        ("call oh seven seven, double oh, nine one two three", "call <phone>"),
    ],
)
def test_spelt_out_contact_details_are_masked(text: str, expected: str) -> None:
    assert mask(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "iPhone 13 128GB, like new",
        "Michelin tyres 205/55 R16",
        "3 bed house, 2019",
        "sold at market price",
        "pool table, good condition",
        "one two three piece suite",
        "Samsung 55in 4K TV 2021",
        "lol ooo",
        "code 1o2o3ooo",  # 3 real digits are not a number
        "ooo lll ooo",
        "x@a.b",  # no letters-only top-level domain
        "meet at the station.",
    ],
)
def test_listing_facts_are_kept(text: str) -> None:
    assert mask(text) == text


def test_a_phone_number_is_masked_at_exactly_seven_digits_but_not_six() -> None:
    assert mask("call 1234567") == "call <phone>"
    assert mask("ref 123456") == "ref 123456"


def test_nothing_to_mask_is_returned_as_given() -> None:
    assert mask(None) is None and mask("") == ""
