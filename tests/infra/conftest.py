"""Each stack is rendered once per session under Pulumi's mocks; tests read the recorded objects."""

from __future__ import annotations

import pytest

from tests.infra.render import Rendered, render

STACKS = ["dev", "staging", "prod"]
# secret config, as `pulumi config set --secret` would store it: the eks stacks pull the image from
# ghcr.io with a pull secret
PULL = {"pigeonhole:imagePullSecret": '{"auths": {"ghcr.io": {"auth": "bW9jazptb2Nr"}}}'}
STACK_SECRETS = {"staging": PULL, "prod": PULL}
_cache: dict[str, Rendered] = {}


def rendered_stack(stack: str) -> Rendered:
    if stack not in _cache:
        _cache[stack] = render(stack, secrets=STACK_SECRETS.get(stack))
    return _cache[stack]


@pytest.fixture(params=STACKS)
def stack(request: pytest.FixtureRequest) -> Rendered:
    return rendered_stack(request.param)


@pytest.fixture
def dev() -> Rendered:
    return rendered_stack("dev")


@pytest.fixture
def prod() -> Rendered:
    return rendered_stack("prod")
