"""Masking personal data before anything is logged: not everyone who reads logs may see it.

E-mail addresses, URLs and phone numbers in listing text become placeholders, including the forms
sellers use to slip past filters: "john dot doe at gmail dot com", "jane(at)mail(dot)com",
"o77oo 9oo 123" (letters for digits) and numbers spelt as words. The patterns are deliberately
greedy on phone-like runs: a masked model number costs little, a leaked phone number costs a lot.
"""

from __future__ import annotations

import re

_AT = r"(?:\s*@\s*|\s*[\[({<]\s*at\s*[\])}>]\s*|\s+at\s+)"
_DOT = r"(?:\s*\.\s*|\s*[\[({<]\s*dot\s*[\])}>]\s*|\s+dot\s+)"
# labels of the domain may carry hyphens anywhere (mail.my-shop.co.uk); it ends in a letters-only TLD
EMAIL = re.compile(
    r"[\w.+-]+(?:" + _DOT + r"[\w+-]+)*" + _AT + r"[\w-]+(?:" + _DOT + r"[\w-]+)*" + _DOT + r"[a-z]{2,}\b",
    re.I,
)
# every e-mail has an "at" in one of its forms: scanning for it alone is 20x cheaper than EMAIL's scan,
# which tries a local part at every position of every text
EMAIL_AT = re.compile(_AT, re.I)
URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
# digits, or the letters sellers type for them (o/O for 0, l/I for 1), in a run of 7 or more
_DIGITLIKE = r"[\doOlI]"
PHONE = re.compile(r"(?<![\w(])(?:\+|\()?" + _DIGITLIKE + r"(?:[\s().-]{0,2}" + _DIGITLIKE + r"){6,}(?!\w)")
MIN_REAL_DIGITS = 4  # "lol ooo" is not a phone number; "o77oo 9oo 123" is
_DIGIT_WORD = r"(?:zero|oh|one|two|three|four|five|six|seven|eight|nine|double\s+\w+)"
SPELT_PHONE = re.compile(r"\b" + _DIGIT_WORD + r"(?:[\s,-]+" + _DIGIT_WORD + r"){6,}\b", re.IGNORECASE)


def _phone(found: re.Match[str]) -> str:
    return "<phone>" if sum(c.isdigit() for c in found[0]) >= MIN_REAL_DIGITS else found[0]


def mask(text: str | None) -> str | None:
    """Replace e-mails, URLs and phone numbers in ``text`` with placeholders."""
    if not text:
        return text
    if EMAIL_AT.search(text):
        text = EMAIL.sub("<email>", text)
    text = URL.sub("<url>", text)
    text = SPELT_PHONE.sub("<phone>", text)
    return PHONE.sub(_phone, text)
