"""Each stack's program, run under Pulumi's mocks: the right resources, wired the right way."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

import pytest

from pigeonhole.monitoring.trigger import job_from_template
from pigeonhole.serving.auth import API_ROUTES, Role, parse_key_file
from pigeonhole_infra.policies import Manifest, pod_specs
from tests.infra.render import Rendered, RenderError, render, stack_config
from tests.infra.topology import cel

AWS_TYPES = {"awsx:ec2:Vpc", "eks:index:Cluster", "aws:eks/nodeGroup:NodeGroup", "aws:rds/instance:Instance"}


def pod_labels(rendered: Rendered) -> dict[str, dict[str, str]]:
    """Workload name -> the labels its pods carry."""
    found = {}
    for resource in rendered.kubernetes():
        manifest = resource.manifest()
        if manifest["kind"] in {"Deployment", "StatefulSet", "Job"}:
            found[manifest["metadata"]["name"]] = manifest["spec"]["template"]["metadata"]["labels"]
        elif manifest["kind"] == "CronJob":
            template = manifest["spec"]["jobTemplate"]["spec"]["template"]
            found[manifest["metadata"]["name"]] = template["metadata"]["labels"]
    return found


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Kubernetes label-selector semantics (matchLabels and In/NotIn/Exists expressions)."""
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        value = labels.get(expression["key"])
        operator = expression["operator"]
        if operator == "In" and value not in expression["values"]:
            return False
        if operator == "NotIn" and value in expression["values"]:
            return False
        if operator == "Exists" and value is None:
            return False
    return True


def container(manifest: Manifest) -> dict[str, Any]:
    (pod,) = pod_specs(manifest)
    return dict(pod["containers"][0])


def env(manifest: Manifest) -> dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container(manifest)["env"]}


# the cluster-wide prerequisites the stack installs, and the namespace itself
CLUSTER_SCOPED = {
    "Namespace",
    "StorageClass",
    "ClusterIssuer",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
}


def test_each_stack_provisions_its_own_kind_of_cluster(stack: Rendered) -> None:
    types = {r.typ for r in stack.resources}
    statefulsets = {r.inputs["metadata"]["name"] for r in stack.of_kind("StatefulSet")}
    if stack.stack == "dev":
        assert "command:local:Command" in types and not types & AWS_TYPES
        kind, load = stack.of_type("command:local:Command")
        assert kind.inputs["create"].startswith("kind create cluster --name pigeonhole-dev")
        assert load.inputs["create"].startswith("kind load docker-image ")
        assert kind.inputs["delete"] == "kind delete cluster --name pigeonhole-dev"
        assert statefulsets == {"pigeonhole-postgres"}
    else:
        assert types >= AWS_TYPES and "command:local:Command" not in types
        assert statefulsets == set()  # PostgreSQL is RDS
        (nodes,) = stack.of_type("aws:eks/nodeGroup:NodeGroup")
        cluster = stack.config["pigeonhole:cluster"]
        assert nodes.inputs["scalingConfig"]["maxSize"] == cluster["maxNodes"]
        assert nodes.inputs["instanceTypes"] == [cluster["instanceType"]]


def test_the_platform_is_the_same_on_every_cluster(stack: Rendered) -> None:
    deployments = {r.inputs["metadata"]["name"] for r in stack.of_kind("Deployment")}
    cronjobs = {r.inputs["metadata"]["name"] for r in stack.of_kind("CronJob")}
    assert deployments == {"pigeonhole-service", "pigeonhole-mlflow", "pigeonhole-reports"}
    assert cronjobs == {"pigeonhole-drift", "pigeonhole-retrain", "pigeonhole-promote"}
    for kind in ("HorizontalPodAutoscaler", "PodDisruptionBudget", "Role", "RoleBinding", "Namespace"):
        assert len(stack.of_kind(kind)) == 1, kind
    assert bool(stack.of_kind("Ingress")) == (stack.stack != "dev")  # the deploy smoke test's way in
    assert bool(stack.of_kind("ServiceMonitor")) == (stack.stack != "dev")


def test_every_kubernetes_object_goes_through_the_stacks_cluster_in_one_namespace(stack: Rendered) -> None:
    assert len(stack.of_type("pulumi:providers:kubernetes")) == 1
    for resource in stack.kubernetes():
        assert resource.provider is not None and resource.provider.startswith(
            f"urn:pulumi:{stack.stack}::pigeonhole::pulumi:pulumi:Stack$pulumi:providers:kubernetes::cluster::"
        ), resource.name
        if resource.kind not in CLUSTER_SCOPED:
            assert resource.manifest()["metadata"]["namespace"] == "pigeonhole", resource.name


def test_every_platform_pod_runs_the_configured_image(stack: Rendered) -> None:
    image = stack.config["pigeonhole:image"]
    for name in ("pigeonhole-service", "pigeonhole-mlflow", "pigeonhole-reports"):
        assert container(stack.named("Deployment", name))["image"] == image
    for name in ("pigeonhole-drift", "pigeonhole-retrain"):
        assert container(stack.named("CronJob", name))["image"] == image


def test_the_service_is_probed_scaled_and_never_below_capacity(stack: Rendered) -> None:
    deployment = stack.named("Deployment", "pigeonhole-service")
    service_config = stack.config["pigeonhole:service"]
    main = container(deployment)
    assert main["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    hpa = stack.named("HorizontalPodAutoscaler", "pigeonhole-service")["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "pigeonhole-service",
    }
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (
        service_config["replicas"],
        service_config["maxReplicas"],
    )
    assert hpa["metrics"][0]["resource"]["target"]["averageUtilization"] == service_config.get(
        "cpuTarget", 70
    )
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selects(stack.named("PodDisruptionBudget", "pigeonhole-service")["spec"]["selector"], labels)
    assert selects({"matchLabels": stack.named("Service", "pigeonhole-service")["spec"]["selector"]}, labels)


def _database_key(key: str) -> dict[str, Any]:
    return {"secretKeyRef": {"name": "pigeonhole-database", "key": key}}


def test_each_component_connects_with_a_database_role_of_its_own(stack: Rendered) -> None:
    urls = {
        key: urlparse(value)
        for key, value in stack.named("Secret", "pigeonhole-database")["stringData"].items()
        if key != "password"
    }
    roles = {key: (url.username, url.path) for key, url in urls.items()}
    assert roles == {
        "admin-url": ("pigeonhole", "/pigeonhole"),
        "registry-url": ("mlflow", "/mlflow"),
        "log-url": ("pigeonhole_log", "/pigeonhole_log"),
        "log-writer-url": ("pigeonhole_log_writer", "/pigeonhole_log"),
    }
    assert len({url.password for url in urls.values()}) == 4, "each role has a password of its own"
    # the internet-facing service holds only the insert-only role; nothing but the setup Job (and the
    # PostgreSQL pod itself) holds the administrator's credentials
    expected = {
        ("Deployment", "pigeonhole-service"): "log-writer-url",
        ("CronJob", "pigeonhole-drift"): "log-url",
        ("CronJob", "pigeonhole-retrain"): "log-url",
    }
    for (kind, workload), key in expected.items():
        variables = env(stack.named(kind, workload))
        assert variables["MLFLOW_TRACKING_URI"] == stack.outputs["mlflowUrl"], workload
        assert variables["PIGEONHOLE_LOG_DATABASE_URL"] == _database_key(key), workload
        assert variables["PIGEONHOLE_LOG_SINK"] == "postgres", workload
    mlflow = stack.named("Deployment", "pigeonhole-mlflow")
    assert env(mlflow)["MLFLOW_BACKEND_STORE_URI"] == _database_key("registry-url")
    assert "--backend-store-uri=$(MLFLOW_BACKEND_STORE_URI)" in container(mlflow)["args"]
    assert urls["registry-url"].scheme == "postgresql+psycopg"
    setup = stack.named("Job", "pigeonhole-db-setup")
    assert container(setup)["command"] == ["pigeonhole", "db", "setup"]
    assert env(setup) == {
        "DB_ADMIN_URL": _database_key("admin-url"),
        "DB_REGISTRY_URL": _database_key("registry-url"),
        "DB_LOG_URL": _database_key("log-url"),
        "DB_LOG_WRITER_URL": _database_key("log-writer-url"),
    }
    holders = {
        r.inputs["metadata"]["name"]
        for r in stack.kubernetes()
        if r.kind != "Secret"
        and any(k in json.dumps(r.manifest()) for k in ('"key": "admin-url"', '"key": "password"'))
    }
    assert holders <= {"pigeonhole-db-setup", "pigeonhole-postgres"}, holders


def test_each_pod_signs_in_to_the_registry_as_reader_or_writer(stack: Rendered) -> None:
    """MLflow runs its basic-auth app; the internet-facing service and the drift job read, training and
    the gate write, and only the users Job (and MLflow itself) holds the admin's password."""
    mlflow = stack.named("Deployment", "pigeonhole-mlflow")
    assert "--app-name=basic-auth" in container(mlflow)["args"]
    config = stack.named("Secret", "pigeonhole-mlflow-auth")["stringData"]["basic_auth.ini"]
    assert "default_permission = READ" in config and "admin_username = admin" in config
    registry_url = stack.named("Secret", "pigeonhole-database")["stringData"]["registry-url"]
    assert f"database_uri = {registry_url}" in config, "its users live in the registry's own database"
    assert env(mlflow)["MLFLOW_AUTH_CONFIG_PATH"] == "/etc/mlflow-auth/basic_auth.ini"
    expected = {
        ("Deployment", "pigeonhole-service"): ("pigeonhole-reader", "reader-password"),
        ("CronJob", "pigeonhole-drift"): ("pigeonhole-reader", "reader-password"),
        ("CronJob", "pigeonhole-retrain"): ("pigeonhole-writer", "writer-password"),
        ("CronJob", "pigeonhole-promote"): ("pigeonhole-writer", "writer-password"),
        ("Job", "pigeonhole-registry-users"): ("admin", "admin-password"),
    }
    for (kind, workload), (user, key) in expected.items():
        variables = env(stack.named(kind, workload))
        assert variables["MLFLOW_TRACKING_USERNAME"] == user, workload
        assert variables["MLFLOW_TRACKING_PASSWORD"] == {
            "secretKeyRef": {"name": "pigeonhole-mlflow-auth", "key": key}
        }, workload
    admins = {
        r.inputs["metadata"]["name"]
        for r in stack.kubernetes()
        if r.kind != "Secret" and '"key": "admin-password"' in json.dumps(r.manifest())
    }
    assert admins == {"pigeonhole-mlflow", "pigeonhole-registry-users"}


def test_the_drift_cronjob_runs_on_schedule_with_its_trigger(stack: Rendered) -> None:
    drift_config = stack.config["pigeonhole:drift"]
    cronjob = stack.named("CronJob", "pigeonhole-drift")
    assert cronjob["spec"]["schedule"] == drift_config["schedule"]
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    variables = env(cronjob)
    assert variables["PIGEONHOLE_TRIGGER"] == drift_config["trigger"]
    assert variables["PIGEONHOLE_RETRAIN_TEMPLATE"] == "pigeonhole-retrain"
    (pod,) = pod_specs(cronjob)
    assert pod["serviceAccountName"] == "pigeonhole-drift"
    assert pod["automountServiceAccountToken"] is (drift_config["trigger"] == "kubernetes")
    if drift_config["trigger"] == "github":
        assert variables["GITHUB_TOKEN"] == {"secretKeyRef": {"name": "pigeonhole-github", "key": "token"}}
        assert variables["PIGEONHOLE_GITHUB_REPOSITORY"] == drift_config["githubRepository"]
    else:
        assert "GITHUB_TOKEN" not in variables
    retrain = stack.named("CronJob", "pigeonhole-retrain")["spec"]
    assert retrain["suspend"] is True  # a template: it runs when drift (or a person) starts it


def test_rbac_lets_the_drift_job_create_only_jobs_in_its_namespace(stack: Rendered) -> None:
    assert not stack.of_kind("ClusterRole") and not stack.of_kind("ClusterRoleBinding")
    role = stack.named("Role", "pigeonhole-drift")
    assert role["rules"] == [
        {
            "apiGroups": ["batch"],
            "resources": ["cronjobs"],
            "resourceNames": ["pigeonhole-retrain"],
            "verbs": ["get"],
        },
        {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create"]},
    ]
    binding = stack.named("RoleBinding", "pigeonhole-drift")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "pigeonhole-drift",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "pigeonhole-drift", "namespace": "pigeonhole"}
    ]


def test_network_policies_guard_the_pods_they_name(stack: Rendered) -> None:
    pods = pod_labels(stack)
    policies = {r.inputs["metadata"]["name"]: r.manifest()["spec"] for r in stack.of_kind("NetworkPolicy")}
    deny = policies.pop("default-deny-ingress")
    assert deny["podSelector"] == {} and deny["policyTypes"] == ["Ingress"] and "ingress" not in deny

    def guarded(spec: dict[str, Any]) -> set[str]:
        return {name for name, labels in pods.items() if selects(spec["podSelector"], labels)}

    def allowed(spec: dict[str, Any]) -> set[str]:
        """This namespace's pods by name, other namespaces as `ns/NAME`; no `from` would mean anyone."""
        peers = spec["ingress"][0]["from"]
        namespaces = {
            f"ns/{peer['namespaceSelector']['matchLabels']['kubernetes.io/metadata.name']}"
            for peer in peers
            if "namespaceSelector" in peer
        }
        assert all("podSelector" in peer or "namespaceSelector" in peer for peer in peers)
        local = [peer["podSelector"] for peer in peers if "namespaceSelector" not in peer]
        return namespaces | {name for name, labels in pods.items() for peer in local if selects(peer, labels)}

    platform = {"pigeonhole-service", "pigeonhole-drift", "pigeonhole-retrain"}
    expected = {
        # public traffic only through the ingress controller (which routes the API paths alone), and
        # Prometheus for /metrics; no other pod, in this namespace or another, reaches the service
        "allow-service-from-ingress-and-monitoring": (
            {"pigeonhole-service"},
            {"ns/ingress-nginx", "ns/monitoring"},
        ),
        "allow-mlflow-from-platform": ({"pigeonhole-mlflow"}, platform | {"pigeonhole-registry-users"}),
        "allow-reports-from-namespace": ({"pigeonhole-reports"}, platform | {"pigeonhole-mlflow"}),
    }
    if stack.stack == "dev":
        expected["allow-postgres-from-platform"] = (
            {"pigeonhole-postgres"},
            platform | {"pigeonhole-mlflow", "pigeonhole-db-setup"},
        )
    assert set(policies) == set(expected)
    for name, (targets, sources) in expected.items():
        assert guarded(policies[name]) == targets, name
        assert allowed(policies[name]) == sources, name


def test_outputs_say_where_things_are_and_keep_the_kubeconfig_secret(stack: Rendered) -> None:
    assert stack.outputs["mlflowUrl"] == "http://pigeonhole-mlflow.pigeonhole.svc.cluster.local:5000"
    host = stack.config["pigeonhole:service"].get("ingressHost")
    assert stack.outputs["serviceUrl"] == (
        f"https://{host}" if host else "http://pigeonhole-service.pigeonhole.svc.cluster.local"
    )
    assert stack.outputs["kubeconfig"] and "kubeconfig" in stack.secret_outputs
    assert "serviceUrl" not in stack.secret_outputs


def test_on_eks_mlflow_reaches_s3_through_its_service_account_role(prod: Rendered) -> None:
    account = prod.named("ServiceAccount", "pigeonhole-mlflow")
    role_arn = account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    (role,) = [r for r in prod.of_type("aws:iam/role:Role") if r.name == "aws-mlflow"]
    assert role_arn.endswith("/aws-mlflow")
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Condition"]["StringEquals"] == {
        "oidc.eks.eu-west-1.amazonaws.com/id/ABC:sub": "system:serviceaccount:pigeonhole:pigeonhole-mlflow",
        "oidc.eks.eu-west-1.amazonaws.com/id/ABC:aud": "sts.amazonaws.com",
    }
    mlflow = container(prod.named("Deployment", "pigeonhole-mlflow"))
    assert "--artifacts-destination=s3://aws-artifacts-bucket/artifacts" in mlflow["args"]
    assert not any("AWS_" in variable["name"] for variable in mlflow["env"])  # no static keys


def test_on_eks_the_database_is_private_encrypted_and_backed_up(prod: Rendered) -> None:
    (database,) = prod.of_type("aws:rds/instance:Instance")
    inputs = database.inputs
    assert inputs["publiclyAccessible"] is False and inputs["storageEncrypted"] is True
    assert inputs["multiAz"] is True and inputs["deletionProtection"] is True
    assert inputs["backupRetentionPeriod"] >= 7
    (firewall,) = prod.of_type("aws:ec2/securityGroup:SecurityGroup")
    assert firewall.inputs["ingress"][0]["cidrBlocks"] == ["10.0.0.0/16"]
    (block,) = prod.of_type("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert all(
        block.inputs[key] is True for key in ("blockPublicAcls", "blockPublicPolicy", "restrictPublicBuckets")
    )


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda c: c["pigeonhole:cluster"].update(provder="kind"), "pigeonhole:cluster.provder"),
        (lambda c: c.update({"pigeonhole:image": "ghcr.io/acme/pigeonhole:latest"}), "not pinned"),
        (lambda c: c["pigeonhole:drift"].update(trigger="github"), "githubRepository"),
        (lambda c: c["pigeonhole:service"].update(maxReplicas=0), "maxReplicas"),
    ],
)
def test_a_bad_stack_config_is_refused_with_the_key_at_fault(change: Any, error: str) -> None:
    config = stack_config("dev")
    change(config)
    with pytest.raises(RenderError, match=f"ConfigError: invalid stack config: .*{error}"):
        render("dev", config=config)


def test_the_github_trigger_needs_its_token_as_secret_config() -> None:
    config = stack_config("prod")
    config["pigeonhole:drift"] = {
        **config["pigeonhole:drift"],
        "trigger": "github",
        "githubRepository": "o/r",
    }
    with pytest.raises(RenderError, match="Missing required configuration variable 'pigeonhole:githubToken'"):
        render("prod", config=config, secrets={"pigeonhole:imagePullSecret": "{}"})


def test_only_the_public_api_is_published_and_every_caller_holds_a_key(stack: Rendered) -> None:
    service = env(stack.named("Deployment", "pigeonhole-service"))
    assert service["PIGEONHOLE_API_KEYS_FILE"] == "/etc/pigeonhole/keys/api-keys.json"
    assert service["PIGEONHOLE_FEEDBACK_SIGNING_KEY"]["secretKeyRef"]["name"] == "pigeonhole-feedback-key"
    key_file = stack.named("Secret", "pigeonhole-api-keys")["stringData"]["api-keys.json"]
    holders = {entry.caller: entry.role for entry in parse_key_file(key_file)}
    assert holders == {"web": Role.client, "prometheus": Role.metrics}, "only hashes, and Prometheus's own"
    for ingress in stack.of_kind("Ingress"):
        (rule,) = ingress.manifest()["spec"]["rules"]
        paths = rule["http"]["paths"]
        assert {p["path"] for p in paths} == API_ROUTES and {p["pathType"] for p in paths} == {"Exact"}
    for monitor in stack.of_kind("ServiceMonitor"):
        (endpoint,) = monitor.manifest()["spec"]["endpoints"]
        assert endpoint["authorization"]["credentials"] == {"name": "pigeonhole-metrics-key", "key": "token"}


def test_a_stack_without_api_keys_is_refused_rather_than_served_open() -> None:
    with pytest.raises(RenderError, match="pigeonhole:apiKeys is needed: the service refuses to run open"):
        render("dev")


def test_the_drift_job_may_start_only_the_retraining_job_of_its_template(stack: Rendered) -> None:
    """RBAC lets the drift account create Jobs; the admission policy lets it create only this one."""
    (policy,) = [r.manifest() for r in stack.of_kind("ValidatingAdmissionPolicy")]
    (binding,) = [r.manifest() for r in stack.of_kind("ValidatingAdmissionPolicyBinding")]
    namespace = stack.named("Namespace", "pigeonhole")["metadata"]["name"]
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert binding["spec"]["paramRef"] == {
        "name": "pigeonhole-retrain",
        "namespace": namespace,
        "parameterNotFoundAction": "Deny",
    }
    assert binding["spec"]["validationActions"] == ["Deny"] and policy["spec"]["failurePolicy"] == "Fail"
    (condition,) = policy["spec"]["matchConditions"]
    drift = {"userInfo": {"username": f"system:serviceaccount:{namespace}:pigeonhole-drift"}}
    other = {"userInfo": {"username": f"system:serviceaccount:{namespace}:default"}}
    assert cel(condition["expression"], request=drift) and not cel(condition["expression"], request=other)

    cronjob = stack.named("CronJob", "pigeonhole-retrain")
    job = job_from_template(cronjob, datetime.now(UTC))
    (validation,) = policy["spec"]["validations"]
    assert cel(validation["expression"], object=job, params=cronjob), "the trigger's own Job is admitted"
    for tamper in (
        lambda pod: pod["containers"][0].update(image="evil/miner:1"),
        lambda pod: pod["containers"][0].update(command=["sh", "-c", "cat /secrets/*"]),
        lambda pod: pod.update(serviceAccountName="pigeonhole-mlflow"),
        lambda pod: pod.setdefault("volumes", []).append({"name": "s", "secret": {"secretName": "x"}}),
    ):
        changed = copy.deepcopy(job)
        tamper(changed["spec"]["template"]["spec"])
        assert not cel(validation["expression"], object=changed, params=cronjob)
