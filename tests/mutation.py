"""`make mutation`'s verdict: the share of mutants killed per module, from mutmut's results, against the
agreed floor. Equivalent mutants (no test can tell them from the original) are listed below with why,
and left out of the count; anything else that survives or has no test counts against the module.

    python -m tests.mutation [--floor 0.9] [--mutants mutants]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code

FLOOR = 0.90
KILLED = {"killed", "timeout", "caught by type check"}
CODEC = "the same codec under another spelling of its name"
UNUSED_ERRORS = "an encoding error handler, called only for text the request schema refuses"
DEFAULT_32 = "secrets.token_urlsafe(None) is its default, 32 bytes"
FALSY = "None is as false as False there"
REBUILT = "the key ring rebuilds this state before its first use"
EQUIVALENT = {
    "pigeonhole.model.gate.x_recall_upper_bound__mutmut_4": "drops confidence_level=0.95, SciPy's default",
    "pigeonhole.monitoring.compare.x__columns__mutmut_24": "`continue` -> `break` on price, the last column",
    "pigeonhole.monitoring.compare.x_compare__mutmut_30": (
        "drops DriftedColumnsCount's columns=: the datasets hold exactly those columns"
    ),
    "pigeonhole.serving.tokens.x_listing_digest__mutmut_16": UNUSED_ERRORS,
    "pigeonhole.serving.tokens.x_listing_digest__mutmut_18": CODEC,
    "pigeonhole.serving.tokens.x_listing_digest__mutmut_19": UNUSED_ERRORS,
    "pigeonhole.serving.tokens.x_listing_digest__mutmut_20": UNUSED_ERRORS,
    "pigeonhole.serving.tokens.x_signing_key__mutmut_13": DEFAULT_32,
    "pigeonhole.serving.auth.xǁKeyRingǁ__init____mutmut_2": REBUILT,
    "pigeonhole.serving.auth.xǁKeyRingǁ__init____mutmut_3": REBUILT,
    "pigeonhole.serving.auth.xǁKeyRingǁ_reload_if_changed__mutmut_8": "rereads the file each time",
    "pigeonhole.serving.auth.xǁKeyRingǁ_write__mutmut_10": "another name for the temporary file",
    "pigeonhole.serving.auth.xǁKeyRingǁ_write__mutmut_19": REBUILT,
    "pigeonhole.serving.auth.xǁKeyRingǁadd__mutmut_3": DEFAULT_32,
    "pigeonhole.serving.auth.xǁCallerAuthǁ__call____mutmut_69": "the wait is a window's remainder",
    "pigeonhole.serving.auth.xǁCallerAuthǁ__call____mutmut_73": "now(None).timestamp() is the same instant",
    "pigeonhole.serving.auth.xǁCallerAuthǁ_authenticate__mutmut_16": "a header XXXX is no Bearer either",
    "pigeonhole.serving.auth.xǁCallerAuthǁ_authenticate__mutmut_18": CODEC,
    "pigeonhole.serving.guard.x_check_json_body__mutmut_23": CODEC,
    "pigeonhole.serving.guard.x_check_json_body__mutmut_48": FALSY,
    "pigeonhole.serving.guard.x_check_json_body__mutmut_53": CODEC,
    "pigeonhole.serving.guard.x__deeper_than__mutmut_8": "strings replaced by other text without brackets",
    "pigeonhole.serving.guard.x__deeper_than__mutmut_15": "still holds [ and {; no bracket is X",
    "pigeonhole.serving.guard.xǁJsonBodyGuardǁ__call____mutmut_26": CODEC,
    "pigeonhole.serving.guard.xǁJsonBodyGuardǁ__call____mutmut_29": CODEC,
    "pigeonhole.serving.guard.xǁJsonBodyGuardǁ_read__mutmut_16": "a default of XXXX is not digits either",
    "pigeonhole.serving.guard.xǁJsonBodyGuardǁ_read__mutmut_62": FALSY,
    "pigeonhole.serving.guard.xǁJsonBodyGuardǁ_read__mutmut_64": FALSY,
    **{
        f"pigeonhole.serving.guard.xǁRejectedInputLogFilterǁfilter__mutmut_{n}": (
            "the log line is built from loc and msg only: include_input, _context, _url change nothing in it"
        )
        for n in range(18, 24)
    },
}


def statuses(mutants: Path) -> dict[str, dict[str, str]]:
    """module -> mutant -> status, from the .meta files mutmut writes beside each mutated module."""
    found: dict[str, dict[str, str]] = {}
    for meta in sorted(mutants.rglob("*.py.meta")):
        module = str(meta.relative_to(mutants).with_suffix("").with_suffix("")).replace("/", ".")
        results = json.loads(meta.read_text())["exit_code_by_key"]
        found[module] = {key: status_by_exit_code[code] for key, code in results.items()}
    return found


def stale_equivalents(found: dict[str, dict[str, str]]) -> list[str]:
    """Listed equivalents of a mutated module that mutmut did not make this time."""
    modules = {key: key.rsplit(".", 1)[0] for key in EQUIVALENT}
    return sorted(key for key, module in modules.items() if module in found and key not in found[module])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--floor", type=float, default=FLOOR)
    parser.add_argument("--mutants", type=Path, default=Path("mutants"))
    args = parser.parse_args()
    failed = []
    print(f"{'module':40} {'mutants':>8} {'killed':>7} {'equivalent':>10} {'score':>7}  not killed")
    found = statuses(args.mutants)
    for module, results in found.items():
        counted = {key: status for key, status in results.items() if key not in EQUIVALENT}
        counts = Counter(status in KILLED for status in counted.values())
        score = counts[True] / len(counted) if counted else 1.0
        missed = sorted(key.rsplit(".", 1)[-1] for key, status in counted.items() if status not in KILLED)
        equivalent = len(results) - len(counted)
        print(
            f"{module:40} {len(results):8} {counts[True]:7} {equivalent:10} {score:7.1%}  {' '.join(missed)}"
        )
        if score < args.floor:
            failed.append(module)
    for key, why in EQUIVALENT.items():
        print(f"equivalent: {key}: {why}")
    stale = stale_equivalents(found)
    if stale:
        # mutmut numbers a function's mutants in order: an edit to the function renumbers them
        print(f"listed equivalents that no longer exist (re-review their functions): {' '.join(stale)}")
        return 1
    if failed:
        print(f"below the floor of {args.floor:.0%}: {', '.join(failed)} (`mutmut show NAME` shows a mutant)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
