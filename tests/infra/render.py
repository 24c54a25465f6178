"""Run the Pulumi program under Pulumi's own mocks and keep every resource it declares.

No CLI, no plugins, no cluster: `pulumi.runtime.set_mocks` answers each resource registration,
and we record its type, name, inputs and provider. Kubernetes inputs arrive in the wire format
(camelCase, `apiVersion`/`kind` set), i.e. the manifest the provider would send to the API server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import rpc

INFRA = Path(__file__).resolve().parents[2] / "infra"
PROJECT = "pigeonhole"
FAKE_KUBECONFIG = "apiVersion: v1\nkind: Config\nclusters: []\n"

# outputs a real provider would compute; everything else echoes its inputs back
COMPUTED: dict[str, Callable[[str], dict[str, Any]]] = {
    "command:local:Command": lambda name: {"stdout": FAKE_KUBECONFIG},
    # one value per resource, as real random passwords differ (letters and digits, like `special=False`)
    "random:index/randomPassword:RandomPassword": lambda name: {
        "result": f"mock{name.replace('-', '')}0123456789"
    },
    "awsx:ec2:Vpc": lambda name: {
        "vpcId": "vpc-0123",
        "privateSubnetIds": ["subnet-priv-a", "subnet-priv-b"],
        "publicSubnetIds": ["subnet-pub-a", "subnet-pub-b"],
    },
    "eks:index:Cluster": lambda name: {
        "kubeconfigJson": json.dumps({"apiVersion": "v1", "kind": "Config", "clusters": []}),
        "oidcProviderArn": "arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABC",
        "oidcIssuer": "oidc.eks.eu-west-1.amazonaws.com/id/ABC",
    },
    "aws:rds/instance:Instance": lambda name: {"address": f"{name}.abc.eu-west-1.rds.amazonaws.com"},
    "aws:s3/bucket:Bucket": lambda name: {"bucket": f"{name}-bucket", "arn": f"arn:aws:s3:::{name}-bucket"},
    "aws:iam/role:Role": lambda name: {"arn": f"arn:aws:iam::123456789012:role/{name}", "name": name},
    "aws:rds/subnetGroup:SubnetGroup": lambda name: {"name": name},
}

# components implemented in provider plugins: their outputs are typed resources, not their inputs
PLUGIN_COMPONENTS = {"awsx:ec2:Vpc", "eks:index:Cluster"}


@dataclass(frozen=True)
class Declared:
    typ: str
    name: str
    inputs: dict[str, Any]
    provider: str | None

    @property
    def is_kubernetes(self) -> bool:
        """An object sent to the API server (a Helm release is the provider's, not an object)."""
        return self.typ.startswith("kubernetes:") and not self.typ.startswith("kubernetes:helm.sh/")

    @property
    def kind(self) -> str:
        return str(self.inputs.get("kind", ""))

    def manifest(self) -> dict[str, Any]:
        """The object as the API server would receive it: Pulumi's secret wrappers removed."""
        return plain(self.inputs)


@dataclass
class Rendered:
    stack: str
    config: dict[str, Any]
    resources: list[Declared] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)

    def of_kind(self, kind: str) -> list[Declared]:
        return [r for r in self.resources if r.is_kubernetes and r.kind == kind]

    def named(self, kind: str, name: str) -> dict[str, Any]:
        (found,) = [r.manifest() for r in self.of_kind(kind) if r.inputs["metadata"]["name"] == name]
        return found

    def of_type(self, typ: str) -> list[Declared]:
        return [r for r in self.resources if r.typ == typ]

    def kubernetes(self) -> list[Declared]:
        return [r for r in self.resources if r.is_kubernetes]


def plain(value: Any) -> Any:
    """Unwrap Pulumi secret values (kept as {sig: secret, value: ...} on the wire); numbers arrive as
    floats (protobuf), so whole ones become ints again, as in the JSON the API server receives."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return plain(value["value"])
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self, rendered: Rendered) -> None:
        self.rendered = rendered

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.rendered.resources.append(Declared(args.typ, args.name, dict(args.inputs), args.provider))
        computed = COMPUTED.get(args.typ, lambda name: {})(args.name)
        echoed = {} if args.typ in PLUGIN_COMPONENTS else args.inputs
        return f"{args.name}-id", {**echoed, **computed}

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        return {}, []


def stack_config(stack: str) -> dict[str, Any]:
    return yaml.safe_load((INFRA / f"Pulumi.{stack}.yaml").read_text())["config"]


class RenderError(RuntimeError):
    """The program failed for this stack config; the message is the program's own error."""


def render(
    stack: str, config: dict[str, Any] | None = None, secrets: dict[str, str] | None = None
) -> Rendered:
    """Run the program for ``stack`` (its Pulumi.<stack>.yaml, or ``config``) in a fresh Python process.

    One process per program, as `pulumi up` runs it: Pulumi's runtime keeps global state (settings,
    tasks on its event loop) that does not survive a second program in the same interpreter.
    """
    with tempfile.TemporaryDirectory() as scratch:
        request, answer = Path(scratch) / "request.json", Path(scratch) / "answer.json"
        request.write_text(json.dumps({"stack": stack, "config": config, "secrets": secrets or {}}))
        done = subprocess.run(
            [sys.executable, "-m", "tests.infra.render", str(request), str(answer)],
            cwd=INFRA.parent,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": f"{INFRA.parent}{os.pathsep}{INFRA}"},
        )
        if done.returncode != 0:
            raise RenderError(done.stderr[-4000:])
        kept = json.loads(answer.read_text())
    return Rendered(
        stack,
        kept["config"],
        [Declared(**resource) for resource in kept["resources"]],
        kept["outputs"],
        set(kept["secret_outputs"]),
    )


def render_here(
    stack: str, config: dict[str, Any] | None = None, secrets: dict[str, str] | None = None
) -> Rendered:
    """Run `deploy()` in this process under the mocks and record everything (once per process)."""
    from pigeonhole_infra.platform import deploy

    values = stack_config(stack) if config is None else config
    rendered = Rendered(stack, values)
    pulumi.runtime.set_mocks(RecordingMocks(rendered), project=PROJECT, stack=stack, preview=False)
    wire = {key: value if isinstance(value, str) else json.dumps(value) for key, value in values.items()}
    wire.update(secrets or {})
    pulumi.runtime.set_all_config(wire, list(secrets or {}))

    @pulumi.runtime.test
    def program() -> pulumi.Output[None]:
        outputs = deploy()
        named = {
            "namespace": outputs.namespace,
            "serviceUrl": outputs.service_url,
            "mlflowUrl": outputs.mlflow_url,
            "reportsUrl": outputs.reports_url,
        }
        if outputs.kubeconfig is not None:
            named["kubeconfig"] = outputs.kubeconfig

        async def secrets_of() -> set[str]:
            return {key for key, output in named.items() if await output.is_secret()}

        def keep(values: list[Any]) -> None:
            rendered.outputs.update(dict(zip(named, values, strict=True)))

        secret_names = pulumi.Output.from_input(secrets_of())  # type: ignore[arg-type]
        return pulumi.Output.all(*named.values(), secret_names).apply(
            lambda values: (keep(values[:-1]), rendered.secret_outputs.update(values[-1]))[0]
        )

    program()
    return rendered


if __name__ == "__main__":
    request, answer = (Path(argument) for argument in sys.argv[1:3])
    asked = json.loads(request.read_text())
    result = render_here(asked["stack"], asked["config"], asked["secrets"])
    answer.write_text(
        json.dumps(
            {
                "config": result.config,
                "resources": [asdict(resource) for resource in result.resources],
                "outputs": result.outputs,
                "secret_outputs": sorted(result.secret_outputs),
            }
        )
    )
