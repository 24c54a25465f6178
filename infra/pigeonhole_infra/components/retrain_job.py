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
# a CronJob needs a schedule even while suspended; this one never fires unless unsuspended
IDLE_SCHEDULE = "0 3 * * 0"


def retrain_command(cfg: RetrainConfig) -> list[str]:
    """Also the bootstrap: with no champion yet, the gate's floors decide the first one."""
    return ["pigeonhole", "retrain", "--data", cfg.data, "--feedback-days", f"{cfg.feedback_days:g}"]


@dataclass(frozen=True)
class RetrainJobArgs:
    namespace: pulumi.Input[str]
    image: pods.Image
    config: RetrainConfig
    mlflow_url: pulumi.Input[str]
    database_secret: pulumi.Input[str]


class RetrainJob(pulumi.ComponentResource):
    template_name: pulumi.Output[str]

    def __init__(self, name: str, args: RetrainJobArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pigeonhole:platform:RetrainJob", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        account = pods.service_account(f"{name}-sa", NAME, args.namespace, "retrain", child, image=args.image)
        cronjob = k8s.batch.v1.CronJob(
            f"{name}-cronjob",
            metadata=pods.metadata(NAME, args.namespace, "retrain"),
            spec=k8s.batch.v1.CronJobSpecArgs(
                schedule=args.config.schedule or IDLE_SCHEDULE,
                suspend=args.config.schedule is None,
                concurrency_policy="Forbid",
                successful_jobs_history_limit=3,
                failed_jobs_history_limit=3,
                job_template=pods.cli_job_template(
                    "retrain",
                    args.image.name,
                    retrain_command(args.config),
                    pods.platform_env(args.mlflow_url, args.database_secret),
                    pods.resources("1", "2Gi", args.config.cpu_limit, args.config.memory_limit),
                    account.metadata.name,
                    deadline_seconds=2 * 3600,
                ),
            ),
            opts=child,
        )
        self.template_name = cronjob.metadata.name
        self.register_outputs({"template_name": self.template_name})
