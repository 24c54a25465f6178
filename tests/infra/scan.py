"""Write every Kubernetes object of each stack, rendered under the mocks, as YAML files for scanners.

`python -m tests.infra.scan DIR` (run by `make scan`) leaves DIR/<stack>/<Kind>-<name>.yaml.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from tests.infra.conftest import STACKS, rendered_stack


def write_manifests(folder: Path) -> int:
    written = 0
    for stack in STACKS:
        out = folder / stack
        out.mkdir(parents=True, exist_ok=True)
        for resource in rendered_stack(stack).kubernetes():
            manifest = resource.manifest()
            (out / f"{manifest['kind']}-{manifest['metadata']['name']}.yaml").write_text(
                yaml.safe_dump(manifest)
            )
            written += 1
    return written


if __name__ == "__main__":
    print(f"wrote {write_manifests(Path(sys.argv[1]))} manifests to {sys.argv[1]}")
