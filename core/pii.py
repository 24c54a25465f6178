"""Masking personal data before anything is logged: not everyone who reads logs may see it.

E-mail addresses, URLs and phone numbers in listing text become placeholders. The patterns are
deliberately greedy on phone-like digit runs: a masked model number costs little, a leaked phone
number costs a lot.
"""

from __future__ import annotations

import re

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
PHONE = re.compile(r"(?<![\w(])(?:\+|\()?\d[\d\s().-]{6,}\d(?![\w])")

PLACEHOLDERS = ((EMAIL, "<email>"), (URL, "<url>"), (PHONE, "<phone>"))


def mask(text: str | None) -> str | None:
    """Replace e-mails, URLs and phone numbers in ``text`` with placeholders."""
    if not text:
        return text
    for pattern, placeholder in PLACEHOLDERS:
        text = pattern.sub(placeholder, text)
    return text
