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
EQUIVALENT = {
    "pigeonhole.model.gate.x_recall_upper_bound__mutmut_4": "drops confidence_level=0.95, SciPy's default",
    "pigeonhole.monitoring.compare.x__columns__mutmut_24": "`continue` -> `break` on price, the last column",
    "pigeonhole.monitoring.compare.x_compare__mutmut_30": (
        "drops DriftedColumnsCount's columns=: the datasets hold exactly those columns"
    ),
}


def statuses(mutants: Path) -> dict[str, dict[str, str]]:
    """module -> mutant -> status, from the .meta files mutmut writes beside each mutated module."""
    found: dict[str, dict[str, str]] = {}
    for meta in sorted(mutants.rglob("*.py.meta")):
        module = str(meta.relative_to(mutants).with_suffix("").with_suffix("")).replace("/", ".")
        results = json.loads(meta.read_text())["exit_code_by_key"]
        found[module] = {key: status_by_exit_code[code] for key, code in results.items()}
    return found


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--floor", type=float, default=FLOOR)
    parser.add_argument("--mutants", type=Path, default=Path("mutants"))
    args = parser.parse_args()
    failed = []
    print(f"{'module':40} {'mutants':>8} {'killed':>7} {'equivalent':>10} {'score':>7}  not killed")
    for module, results in statuses(args.mutants).items():
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
    if failed:
        print(f"below the floor of {args.floor:.0%}: {', '.join(failed)} (`mutmut show NAME` shows a mutant)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
