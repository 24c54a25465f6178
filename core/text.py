"""What text the platform accepts: one rule for the API's fields and the training data contract.

Stores cannot hold everything a JSON string can: PostgreSQL refuses NUL, UTF-8 has no encoding for an
unpaired surrogate (``"\\ud800"``), and a title made only of invisible characters (a zero-width space)
is nothing a model can learn from or a seller meant. Such text is refused where it enters, with the
reason, so no sink ever stalls on it.
"""

from __future__ import annotations

import re
import unicodedata

# Unicode categories: Cc control characters, Cs surrogates; Cf (format) and Z* (separators) are the
# invisible ones that may appear inside text but cannot make up all of it
INVISIBLE = {"Cc", "Cf", "Cs", "Zs", "Zl", "Zp"}
# Cc is exactly U+0000-001F and U+007F-009F, Cs exactly U+D800-DFFF (fixed by Unicode's stability
# policy); tab, newline and carriage return are allowed. A regex finds them at C speed: a million
# listings' text in well under a second, where a loop over characters took 13 s
UNSTORABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def unusable(text: str) -> str | None:
    """Why ``text`` cannot be stored, or None when it can."""
    found = UNSTORABLE.search(text)
    if found is None:
        return None
    return (
        f"contains the control character or unpaired surrogate U+{ord(found.group()):04X} at position "
        f"{found.start()}: remove it"
    )


def clean(text: str) -> str:
    """``text`` with every character :func:`unusable` names replaced by a space: for files, whose
    mojibake control characters (real catalogues have them) should not cost a whole dataset."""
    return UNSTORABLE.sub(" ", text)


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
