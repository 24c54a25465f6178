"""What text the platform accepts: one rule for the API's fields and the training data contract.

Stores cannot hold everything a JSON string can: PostgreSQL refuses NUL, UTF-8 has no encoding for an
unpaired surrogate (``"\\ud800"``), and a title made only of invisible characters (a zero-width space)
is nothing a model can learn from or a seller meant. Such text is refused where it enters, with the
reason, so no sink ever stalls on it.
"""

from __future__ import annotations

import unicodedata

# Unicode categories: Cc control characters, Cs surrogates; Cf (format) and Z* (separators) are the
# invisible ones that may appear inside text but cannot make up all of it
UNSTORABLE = {"Cc", "Cs"}
INVISIBLE = {"Cc", "Cf", "Cs", "Zs", "Zl", "Zp"}
ALLOWED_CONTROLS = "\t\n\r"


def unusable(text: str) -> str | None:
    """Why ``text`` cannot be stored, or None when it can."""
    for position, character in enumerate(text):
        if character not in ALLOWED_CONTROLS and unicodedata.category(character) in UNSTORABLE:
            return (
                f"contains the control character or unpaired surrogate U+{ord(character):04X} at position "
                f"{position}: remove it"
            )
    return None


def clean(text: str) -> str:
    """``text`` with every character :func:`unusable` names replaced by a space: for files, whose
    mojibake control characters (real catalogues have them) should not cost a whole dataset."""
    if unusable(text) is None:
        return text
    return "".join(
        " " if c not in ALLOWED_CONTROLS and unicodedata.category(c) in UNSTORABLE else c for c in text
    )


def invisible(text: str) -> bool:
    """True when nothing in ``text`` would show: only spaces, zero-width and other format characters."""
    return all(unicodedata.category(character) in INVISIBLE for character in text)


def check_text(text: str) -> str:
    """A pydantic validator: ``text`` unchanged, or ValueError saying what to fix."""
    problem = unusable(text)
    if problem:
        raise ValueError(problem)
    return text


def check_visible(text: str) -> str:
    """As :func:`check_text`, and at least one visible character."""
    if invisible(check_text(text)):
        raise ValueError("has no visible characters (only spaces or zero-width characters)")
    return text
