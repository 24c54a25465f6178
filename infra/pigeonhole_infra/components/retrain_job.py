"""The retraining Job template: a CronJob whose jobTemplate runs `pigeonhole retrain`.

Suspended unless a schedule is configured, it is the one definition of "a retraining" in the
cluster: the drift trigger (PIGEONHOLE_TRIGGER=kubernetes) creates Jobs from it, as
`kubectl create job --from=cronjob/pigeonhole-retrain` does by hand. The image, command, Secrets
and limits therefore live here, in reviewed infrastructure code, not in the drift job.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from pigeonhole_infra import pods
from pigeonhole_infra.config import RetrainConfig

NAME = "pigeonhole-retrain"
PROMOTE_NAME = "pigeonhole-promote"
# names its MLflow run: the Job is made by the drift monitor (drift) or the CronJob's schedule
RETRAIN_REASON = "in the cluster (drift or schedule)"
# a CronJob needs a schedule even while suspended; this one never fires unless unsuspended
IDLE_SCHEDULE = "0 3 * * 0"


def retrain_command(cfg: RetrainConfig) -> list[str]:
    """Also the bootstrap: with no champion yet, the gate's floors decide the first one."""
    return [
        "pigeonhole",
        "retrain",
        "--data",
        cfg.data,
        "--feedback-days",
        f"{cfg.feedback_days:g}",
        "--reason",
        RETRAIN_REASON,
    ]


@dataclass(frozen=True)
class RetrainJobArgs:
    namespace: pulumi.Input[str]
    image: pods.Image
    config: RetrainConfig
    registry: pods.RegistryIdentity  # the writer: training registers, the gate moves aliases
    database_secret: pulumi.Input[str]


class RetrainJob(pulumi.ComponentResource):
    """Two suspended CronJobs used as Job templates: the retraining (also the bootstrap) and the
    promotion, which a reviewed workflow starts where `retrain.promote` is false (prod)."""

    template_name: pulumi.Output[str]
    promote_template_name: pulumi.Output[str]

    def __init__(self, name: str, args: RetrainJobArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pigeonhole:platform:RetrainJob", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        account = pods.service_account(f"{name}-sa", NAME, args.namespace, "retrain", child, image=args.image)
        environment = [
            *pods.platform_env(args.registry, args.database_secret),
            *pods.settings_env({"gate_promotes": str(args.config.promote).lower()}),
        ]
        retrain = self._template(
            f"{name}-cronjob",
            NAME,
            "retrain",
            retrain_command(args.config),
            args,
            environment,
            account,
            child,
        )
        promote = self._template(
            f"{name}-promote",
            PROMOTE_NAME,
            "promote",
            ["pigeonhole", "promote"],
            args,
            environment,
            account,
            child,
        )
        self.template_name = retrain.metadata.name
        self.promote_template_name = promote.metadata.name
        self.register_outputs({"template_name": self.template_name})

    @staticmethod
    def _template(
        resource_name: str,
        name: str,
        component: str,
        command: list[str],
        args: RetrainJobArgs,
        environment: list[k8s.core.v1.EnvVarArgs],
        account: k8s.core.v1.ServiceAccount,
        opts: pulumi.ResourceOptions,
    ) -> k8s.batch.v1.CronJob:
        schedule = args.config.schedule if component == "retrain" else None
        return k8s.batch.v1.CronJob(
            resource_name,
            metadata=pods.metadata(name, args.namespace, component),
            spec=k8s.batch.v1.CronJobSpecArgs(
                schedule=schedule or IDLE_SCHEDULE,
                suspend=schedule is None,
                concurrency_policy="Forbid",
                successful_jobs_history_limit=3,
                failed_jobs_history_limit=3,
                job_template=pods.cli_job_template(
                    component,
                    args.image.name,
                    command,
                    environment,
                    pods.resources("1", "2Gi", args.config.cpu_limit, args.config.memory_limit),
                    account.metadata.name,
                    deadline_seconds=2 * 3600,
                ),
            ),
            opts=opts,
        )
