"""The drift CronJob: `pigeonhole monitor drift` on a schedule, allowed to start only a retraining.

Its ServiceAccount's Role reads one object, the retraining CronJob (the Job template), and creates
Jobs, in this namespace only; nothing else in the cluster is reachable with its token. RBAC cannot
say *which* Job, so a ValidatingAdmissionPolicy (Kubernetes 1.30+) does: a Job this account creates
must run exactly the pod of the retraining CronJob's template (its image, command, env, volumes,
service account), so a stolen drift token cannot start a pod that mounts other Secrets or borrows
another account's cloud role.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from pigeonhole.core.settings import TriggerKind
from pigeonhole.monitoring.result import RunSource
from pigeonhole_infra import pods
from pigeonhole_infra.components.reports_ui import MOUNT, ReportsUI
from pigeonhole_infra.config import DriftConfig

NAME = "pigeonhole-drift"
# CEL, evaluated by the API server with the retraining CronJob as the policy's parameter
JOB_IS_THE_TEMPLATE = "object.spec.template.spec == params.spec.jobTemplate.spec.template.spec"


def drift_command(cfg: DriftConfig) -> list[str]:
    return ["pigeonhole", "monitor", "drift", "--window", cfg.window, "--source", RunSource.schedule]


@dataclass(frozen=True)
class DriftMonitorArgs:
    namespace: pulumi.Input[str]
    image: pods.Image
    config: DriftConfig
    registry: pods.RegistryIdentity  # the reader: drift reads the champion and its reference
    database_secret: pulumi.Input[str]
    reports_claim: pulumi.Input[str]
    retrain_template: pulumi.Input[str]
    github_secret: pulumi.Input[str] | None = None  # key `token`, for trigger github


class DriftMonitor(pulumi.ComponentResource):
    def __init__(self, name: str, args: DriftMonitorArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pigeonhole:platform:DriftMonitor", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        cfg = args.config
        account = pods.service_account(f"{name}-sa", NAME, args.namespace, "drift", child, image=args.image)
        role = k8s.rbac.v1.Role(
            f"{name}-role",
            metadata=pods.metadata(NAME, args.namespace, "drift"),
            rules=[
                k8s.rbac.v1.PolicyRuleArgs(
                    api_groups=["batch"],
                    resources=["cronjobs"],
                    resource_names=[args.retrain_template],
                    verbs=["get"],
                ),
                # create cannot be narrowed by name (the name is new); the namespace bounds it
                k8s.rbac.v1.PolicyRuleArgs(api_groups=["batch"], resources=["jobs"], verbs=["create"]),
            ],
            opts=child,
        )
        k8s.rbac.v1.RoleBinding(
            f"{name}-rolebinding",
            metadata=pods.metadata(NAME, args.namespace, "drift"),
            role_ref=k8s.rbac.v1.RoleRefArgs(
                api_group="rbac.authorization.k8s.io", kind="Role", name=role.metadata.name
            ),
            subjects=[
                k8s.rbac.v1.SubjectArgs(
                    kind="ServiceAccount", name=account.metadata.name, namespace=args.namespace
                )
            ],
            opts=child,
        )
        settings: dict[str, pulumi.Input[str]] = {
            "trigger": cfg.trigger.value,
            "trigger_cooldown_hours": f"{cfg.cooldown_hours:g}",
            "reports": MOUNT,
            "retrain_template": args.retrain_template,
        }
        environment = [
            *pods.platform_env(args.registry, args.database_secret),
            *pods.settings_env(settings),
        ]
        if cfg.trigger is TriggerKind.github:
            if args.github_secret is None:
                raise ValueError("trigger github needs the GitHub token Secret")
            environment += [
                *pods.settings_env({"github_repository": cfg.github_repository or ""}),
                pods.secret_env("GITHUB_TOKEN", args.github_secret, "token"),
            ]
        self._jobs_only_from_template(name, args, child)
        k8s.batch.v1.CronJob(
            f"{name}-cronjob",
            metadata=pods.metadata(NAME, args.namespace, "drift"),
            spec=k8s.batch.v1.CronJobSpecArgs(
                schedule=cfg.schedule,
                concurrency_policy="Forbid",
                starting_deadline_seconds=600,
                successful_jobs_history_limit=3,
                failed_jobs_history_limit=5,
                job_template=pods.cli_job_template(
                    "drift",
                    args.image.name,
                    drift_command(cfg),
                    environment,
                    pods.resources("250m", "1Gi", "1", "2Gi"),
                    account.metadata.name,
                    # the token is for the kubernetes trigger; other triggers never call the API
                    automount_token=cfg.trigger is TriggerKind.kubernetes,
                    volumes=[pods.pvc_volume("reports", args.reports_claim)],
                    mounts=[k8s.core.v1.VolumeMountArgs(name="reports", mount_path=MOUNT)],
                    affinity=ReportsUI.colocated(),
                ),
            ),
            opts=child,
        )
        self.register_outputs({})

    @staticmethod
    def _jobs_only_from_template(name: str, args: DriftMonitorArgs, opts: pulumi.ResourceOptions) -> None:
        """The admission policy and its binding (cluster-scoped: named after the namespace)."""
        admission = k8s.admissionregistration.v1
        policy = admission.ValidatingAdmissionPolicy(
            f"{name}-jobs-policy",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=pulumi.Output.concat(NAME, "-jobs-", args.namespace), labels=pods.labels("drift")
            ),
            spec=admission.ValidatingAdmissionPolicySpecArgs(
                failure_policy="Fail",
                param_kind=admission.ParamKindArgs(api_version="batch/v1", kind="CronJob"),
                match_constraints=admission.MatchResourcesArgs(
                    resource_rules=[
                        admission.NamedRuleWithOperationsArgs(
                            api_groups=["batch"],
                            api_versions=["v1"],
                            operations=["CREATE"],
                            resources=["jobs"],
                        )
                    ]
                ),
                match_conditions=[
                    admission.MatchConditionArgs(
                        name="created-by-the-drift-job",
                        expression=pulumi.Output.concat(
                            "request.userInfo.username == 'system:serviceaccount:",
                            args.namespace,
                            f":{NAME}'",
                        ),
                    )
                ],
                validations=[
                    admission.ValidationArgs(
                        expression=JOB_IS_THE_TEMPLATE,
                        message="the drift job may start only the retraining Job its CronJob templates",
                    )
                ],
            ),
            opts=opts,
        )
        admission.ValidatingAdmissionPolicyBinding(
            f"{name}-jobs-binding",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=policy.metadata.name, labels=pods.labels("drift")),
            spec=admission.ValidatingAdmissionPolicyBindingSpecArgs(
                policy_name=policy.metadata.name,
                param_ref=admission.ParamRefArgs(
                    name=args.retrain_template,
                    namespace=args.namespace,
                    parameter_not_found_action="Deny",
                ),
                validation_actions=["Deny"],
                match_resources=admission.MatchResourcesArgs(
                    namespace_selector=k8s.meta.v1.LabelSelectorArgs(
                        match_labels={"kubernetes.io/metadata.name": args.namespace}
                    )
                ),
            ),
            opts=opts,
        )
