"""The pieces every workload shares: labels, the hardened security context, resources, env from Secrets.

One place decides what "a safe container" means here (non-root, read-only root filesystem, no
privilege escalation, every capability dropped, RuntimeDefault seccomp), so no component can drift.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from pigeonhole.core.errors import ExitCode
from pigeonhole.core.settings import LogSinkKind, setting_env

PART_OF = "pigeonhole"
COMPONENT_LABEL = "app.kubernetes.io/component"
APP_UID = 1034  # the `bentoml` user of the Bento image


def labels(component: str) -> dict[str, str]:
    """Labels on a workload's pods; NetworkPolicies and Services select by these."""
    return {
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/name": f"pigeonhole-{component}",
        COMPONENT_LABEL: component,
    }


def metadata(
    name: str, namespace: pulumi.Input[str], component: str, **extra: object
) -> k8s.meta.v1.ObjectMetaArgs:
    return k8s.meta.v1.ObjectMetaArgs(
        name=name,
        namespace=namespace,
        labels={**labels(component), "app.kubernetes.io/managed-by": "pulumi"},
        **extra,  # type: ignore[arg-type]
    )


def container_security(read_only_root: bool = True) -> k8s.core.v1.SecurityContextArgs:
    return k8s.core.v1.SecurityContextArgs(
        run_as_non_root=True,
        read_only_root_filesystem=read_only_root,
        allow_privilege_escalation=False,
        capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
        seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
    )


def pod_security(uid: int = APP_UID) -> k8s.core.v1.PodSecurityContextArgs:
    return k8s.core.v1.PodSecurityContextArgs(
        run_as_non_root=True,
        run_as_user=uid,
        run_as_group=uid,
        fs_group=uid,
        seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
    )


def resources(
    cpu: str, memory: str, cpu_limit: str, memory_limit: str
) -> k8s.core.v1.ResourceRequirementsArgs:
    return k8s.core.v1.ResourceRequirementsArgs(
        requests={"cpu": cpu, "memory": memory}, limits={"cpu": cpu_limit, "memory": memory_limit}
    )


def env(values: dict[str, pulumi.Input[str]]) -> list[k8s.core.v1.EnvVarArgs]:
    """Plain variables; anything secret goes through :func:`secret_env` instead."""
    return [k8s.core.v1.EnvVarArgs(name=name, value=value) for name, value in values.items()]


def settings_env(values: dict[str, pulumi.Input[str]]) -> list[k8s.core.v1.EnvVarArgs]:
    """pigeonhole settings by field name (core/settings.py): a misspelt name fails the program."""
    return env({setting_env(name): value for name, value in values.items()})


def secret_env(name: str, secret: pulumi.Input[str], key: str) -> k8s.core.v1.EnvVarArgs:
    return k8s.core.v1.EnvVarArgs(
        name=name,
        value_from=k8s.core.v1.EnvVarSourceArgs(
            secret_key_ref=k8s.core.v1.SecretKeySelectorArgs(name=secret, key=key)
        ),
    )


def scratch(
    name: str = "tmp", mount_path: str = "/tmp"
) -> tuple[k8s.core.v1.VolumeArgs, k8s.core.v1.VolumeMountArgs]:
    """A writable emptyDir, so the root filesystem can stay read-only."""
    return (
        k8s.core.v1.VolumeArgs(name=name, empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="1Gi")),
        k8s.core.v1.VolumeMountArgs(name=name, mount_path=mount_path),
    )


def pvc_volume(name: str, claim: pulumi.Input[str]) -> k8s.core.v1.VolumeArgs:
    return k8s.core.v1.VolumeArgs(
        name=name, persistent_volume_claim=k8s.core.v1.PersistentVolumeClaimVolumeSourceArgs(claim_name=claim)
    )


@dataclass(frozen=True)
class Image:
    """The platform image, and the Secret the nodes pull it with (None: public, or loaded by kind)."""

    name: str
    pull_secret: pulumi.Input[str] | None = None


def service_account(
    resource_name: str,
    name: str,
    namespace: pulumi.Input[str],
    component: str,
    opts: pulumi.ResourceOptions,
    annotations: pulumi.Input[dict[str, pulumi.Input[str]]] | None = None,
    image: Image | None = None,
) -> k8s.core.v1.ServiceAccount:
    """One identity per workload; tokens are mounted only where a pod talks to the API server, and
    its pods pull the platform image with the stack's pull secret."""
    pull = image.pull_secret if image is not None else None
    return k8s.core.v1.ServiceAccount(
        resource_name,
        metadata=metadata(name, namespace, component, annotations=annotations),
        image_pull_secrets=[k8s.core.v1.LocalObjectReferenceArgs(name=pull)] if pull is not None else None,
        automount_service_account_token=False,
        opts=opts,
    )


# The database Secret's keys: one connection URL per role (`pigeonhole db setup` makes the roles)
ADMIN_PASSWORD_KEY = "password"  # the server's administrator: the PostgreSQL pod and the setup Job only
ADMIN_URL_KEY = "admin-url"
REGISTRY_URL_KEY = "registry-url"  # MLflow's backend
LOG_URL_KEY = "log-url"  # the prediction log's owner: drift and retraining read it
LOG_WRITER_URL_KEY = "log-writer-url"  # the service: may only insert into the log


@dataclass(frozen=True)
class RegistryIdentity:
    """How a pod signs in to the MLflow server (its basic-auth app): a user, its password from a Secret.
    MLflow's client reads these variables itself."""

    url: pulumi.Input[str]
    username: str
    secret: pulumi.Input[str]
    password_key: str

    def env(self) -> list[k8s.core.v1.EnvVarArgs]:
        return [
            *env({"MLFLOW_TRACKING_URI": self.url, "MLFLOW_TRACKING_USERNAME": self.username}),
            secret_env("MLFLOW_TRACKING_PASSWORD", self.secret, self.password_key),
        ]


def platform_env(
    registry: RegistryIdentity, database_secret: pulumi.Input[str], log_url_key: str = LOG_URL_KEY
) -> list[k8s.core.v1.EnvVarArgs]:
    """What every pod running pigeonhole code needs: the registry (as ``registry``'s user), the
    prediction log (as the role ``log_url_key`` names), scratch state."""
    return [
        *registry.env(),
        *env(
            {
                "BENTOML_HOME": "/tmp/bentoml",
                "BENTOML_DO_NOT_TRACK": "True",
                "HOME": "/tmp",
            }
        ),
        # the root filesystem is read-only: all scratch state goes to the /tmp emptyDir
        *settings_env({"log_sink": LogSinkKind.postgres.value, "home": "/tmp/pigeonhole"}),
        secret_env(setting_env("log_database_url"), database_secret, log_url_key),
    ]


# `pigeonhole` exit codes that are answers, not crashes (2 bad input, 3 drift / gate kept the
# champion): retrying cannot change them, so they end the Job at once; anything else is retried.
FINAL_EXIT_CODES = [int(ExitCode.user_error), int(ExitCode.declined)]


def cli_job_template(
    component: str,
    image: str,
    command: list[str],
    environment: list[k8s.core.v1.EnvVarArgs],
    resource_requirements: k8s.core.v1.ResourceRequirementsArgs,
    service_account: pulumi.Input[str],
    automount_token: bool = False,
    volumes: list[k8s.core.v1.VolumeArgs] | None = None,
    mounts: list[k8s.core.v1.VolumeMountArgs] | None = None,
    affinity: k8s.core.v1.AffinityArgs | None = None,
    deadline_seconds: int = 3600,
) -> k8s.batch.v1.JobTemplateSpecArgs:
    """A Job that runs one `pigeonhole ...` command in the platform image, hardened like the rest."""
    tmp_volume, tmp_mount = scratch()
    return k8s.batch.v1.JobTemplateSpecArgs(
        metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels(component)),
        spec=k8s.batch.v1.JobSpecArgs(
            backoff_limit=2,
            active_deadline_seconds=deadline_seconds,
            ttl_seconds_after_finished=86400,
            pod_failure_policy=k8s.batch.v1.PodFailurePolicyArgs(
                rules=[
                    k8s.batch.v1.PodFailurePolicyRuleArgs(
                        action="FailJob",
                        on_exit_codes=k8s.batch.v1.PodFailurePolicyOnExitCodesRequirementArgs(
                            container_name=component, operator="In", values=FINAL_EXIT_CODES
                        ),
                    )
                ]
            ),
            template=k8s.core.v1.PodTemplateSpecArgs(
                metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels(component)),
                spec=k8s.core.v1.PodSpecArgs(
                    restart_policy="Never",
                    service_account_name=service_account,
                    automount_service_account_token=automount_token,
                    security_context=pod_security(),
                    affinity=affinity,
                    containers=[
                        k8s.core.v1.ContainerArgs(
                            name=component,
                            image=image,
                            command=command,
                            env=environment,
                            security_context=container_security(),
                            resources=resource_requirements,
                            volume_mounts=[*(mounts or []), tmp_mount],
                        )
                    ],
                    volumes=[*(volumes or []), tmp_volume],
                ),
            ),
        ),
    )


def setup_job(
    resource_name: str,
    name: str,
    namespace: pulumi.Input[str],
    component: str,
    image: Image,
    command: list[str],
    environment: list[k8s.core.v1.EnvVarArgs],
    opts: pulumi.ResourceOptions,
) -> k8s.batch.v1.Job:
    """A one-off `pigeonhole ...` Job that a deployment runs before what depends on it (Pulumi waits for
    it to complete), with a ServiceAccount of its own; replaced, so run again, when its spec changes."""
    account = service_account(f"{resource_name}-sa", name, namespace, component, opts, image=image)
    template = cli_job_template(
        component,
        image.name,
        command,
        environment,
        resources("100m", "256Mi", "500m", "512Mi"),
        account.metadata.name,
        deadline_seconds=600,
    )
    return k8s.batch.v1.Job(
        resource_name,
        metadata=metadata(name, namespace, component),
        spec=template.spec,
        opts=pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(replace_on_changes=["spec"], delete_before_replace=True)
        ),
    )


def cluster_service(
    resource_name: str,
    name: str,
    namespace: pulumi.Input[str],
    component: str,
    port: int,
    opts: pulumi.ResourceOptions,
    target_port: int | str = "http",
    port_name: str = "http",
) -> k8s.core.v1.Service:
    """A ClusterIP Service in front of a component's pods (selected by its labels)."""
    return k8s.core.v1.Service(
        resource_name,
        metadata=metadata(name, namespace, component),
        spec=k8s.core.v1.ServiceSpecArgs(
            type="ClusterIP",
            selector=labels(component),
            ports=[k8s.core.v1.ServicePortArgs(name=port_name, port=port, target_port=target_port)],
        ),
        opts=opts,
    )


def service_url(
    service: k8s.core.v1.Service, namespace: pulumi.Input[str], port: int | None = None
) -> pulumi.Output[str]:
    """The in-cluster address of a Service, as the platform's pods and port-forwards name it."""
    suffix = f":{port}" if port else ""
    return pulumi.Output.concat(
        "http://", service.metadata.name, ".", namespace, ".svc.cluster.local", suffix
    )


def singleton_deployment(
    resource_name: str,
    name: str,
    namespace: pulumi.Input[str],
    component: str,
    service_account: pulumi.Input[str],
    container: k8s.core.v1.ContainerArgs,
    volumes: list[k8s.core.v1.VolumeArgs],
    opts: pulumi.ResourceOptions,
    automount_token: bool = False,
) -> k8s.apps.v1.Deployment:
    """One pod that owns a ReadWriteOnce volume: replaced, never rolled (old and new cannot share it)."""
    return k8s.apps.v1.Deployment(
        resource_name,
        metadata=metadata(name, namespace, component),
        spec=k8s.apps.v1.DeploymentSpecArgs(
            replicas=1,
            strategy=k8s.apps.v1.DeploymentStrategyArgs(type="Recreate"),
            selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels(component)),
            template=k8s.core.v1.PodTemplateSpecArgs(
                metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels(component)),
                spec=k8s.core.v1.PodSpecArgs(
                    service_account_name=service_account,
                    automount_service_account_token=automount_token,
                    security_context=pod_security(),
                    containers=[container],
                    volumes=volumes,
                ),
            ),
        ),
        opts=opts,
    )
