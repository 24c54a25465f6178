"""The policy pack Pulumi starts for `--policy-pack policy`; the policies live in pigeonhole_infra."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # infra/, where pigeonhole_infra lives

from pulumi_policy import EnforcementLevel, PolicyPack

from pigeonhole_infra.policy_pack import policies

PolicyPack(name="pigeonhole", enforcement_level=EnforcementLevel.MANDATORY, policies=policies())
