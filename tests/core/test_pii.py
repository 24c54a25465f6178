"""Personal data never reaches the prediction log."""

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
    ],
)
def test_contact_details_become_placeholders(text: str, expected: str) -> None:
    assert mask(text) == expected


@pytest.mark.parametrize(
    "text", ["iPhone 13 128GB, like new", "Michelin tyres 205/55 R16", "3 bed house, 2019"]
)
def test_listing_facts_are_kept(text: str) -> None:
    assert mask(text) == text
