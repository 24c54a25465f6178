"""`pulumi up` entry point: the stack's config decides the cluster; pigeonhole_infra does the rest."""

from pigeonhole_infra.platform import deploy

deploy()
