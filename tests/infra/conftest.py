"""Each stack is rendered once per session under Pulumi's mocks; tests read the recorded objects."""

from __future__ import annotations

import pytest

from pigeonhole.serving.auth import KeyEntry, Role, digest, key_file_text
from tests.infra.render import Rendered, render

STACKS = ["dev", "staging", "prod"]
# secret config, as `pulumi config set --secret` would store it: every stack's callers (the file
# `pigeonhole keys add --file` writes); the eks stacks pull the image from ghcr.io with a pull secret
WEB_KEY = "ph_test-web-app-key-that-only-the-tests-know"
API_KEYS = {"pigeonhole:apiKeys": key_file_text([KeyEntry("web", Role.client, digest(WEB_KEY), "test")])}
PULL = {"pigeonhole:imagePullSecret": '{"auths": {"ghcr.io": {"auth": "bW9jazptb2Nr"}}}'}
STACK_SECRETS = {"dev": API_KEYS, "staging": {**API_KEYS, **PULL}, "prod": {**API_KEYS, **PULL}}
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
