"""The stack: builds one construct per logical unit, connects them with grants, declares outputs."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.distribution import Distribution
from stacks.event_queue import EventQueue, EventQueueProps
from stacks.image_repository import ImageRepository, ImageRepositoryProps
from stacks.ledger_table import Ledger
from stacks.monitoring import Monitoring, Thresholds
from stacks.network import Network, NetworkProps
from stacks.processing import (
    LOG_STREAM_PREFIX,
    TASK_ARCHITECTURES,
    DeepZoom,
    Processing,
    ProcessingProps,
)
from stacks.recipe import TileRecipe, image_recipe
from stacks.reconcile_function import Reconcile, ReconcileProps
from stacks.stack_settings import LOG_RETENTION_DAYS, Settings
from stacks.storage import Storage, StorageProps
from stacks.trigger_function import CONFIG_PATH, INSTRUCTIONS_PATH, Trigger, TriggerProps

_RETENTION_BY_DAYS = dict(zip(LOG_RETENTION_DAYS, list(logs.RetentionDays)[:-1], strict=True))
_REMOVAL_POLICIES = {"retain": cdk.RemovalPolicy.RETAIN, "destroy": cdk.RemovalPolicy.DESTROY}


def _storage_props(settings: Settings) -> StorageProps:
    return StorageProps(
        source_bucket_name=settings.source_bucket_name,
        derivatives_bucket_name=settings.derivatives_bucket_name,
        source_versioning=settings.source_versioning,
        noncurrent_version_expiration_days=settings.noncurrent_version_expiration_days,
        access_log_expiration_days=settings.log_retention_days,
    )


def _network_props(settings: Settings) -> NetworkProps:
    return NetworkProps(
        vpc_id=settings.vpc_id,
        subnet_ids=settings.subnet_ids,
        security_group_ids=settings.security_group_ids,
        assign_public_ip=settings.assign_public_ip,
    )


def _processing_props(settings: Settings) -> ProcessingProps:
    return ProcessingProps(
        cpu=settings.cpu,
        memory_mib=settings.memory_mib,
        ephemeral_storage_gib=settings.ephemeral_storage_gib,
        architecture=TASK_ARCHITECTURES[settings.cpu_architecture],
        container_name=settings.container_name,
        image_tag=settings.image_tag,
        max_source_bytes=settings.max_source_bytes,
    )


class IiifProcessStack(cdk.Stack):
    """Buckets, CDN, network, image repository, ledger, ECS task, event queue, trigger, reconcile.

    Stack outputs carry the names in docs/contracts.md (`ClusterName`, `TaskDefinitionArn`, ...).
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: Settings, **kwargs: Any
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description="go-iiif-aws in CDK: IIIF derivatives from S3 images on ECS Fargate.",
            **kwargs,
        )
        self.settings = settings
        # Decided here once, passed down to every construct that needs them.
        retention = _RETENTION_BY_DAYS[settings.log_retention_days]
        removal_policy = _REMOVAL_POLICIES[settings.removal_policy]

        self.storage = Storage(
            self, "Storage", props=_storage_props(settings), removal_policy=removal_policy
        )
        # Issue #11: the private derivatives bucket served to IIIF viewers over HTTPS.
        self.distribution = (
            Distribution(self, "Distribution", bucket=self.storage.derivatives_bucket)
            if settings.cloudfront
            else None
        )
        self.network = Network(
            self,
            "Network",
            props=_network_props(settings),
            log_retention=retention,
            removal_policy=removal_policy,
        )
        self.image_repository = ImageRepository(
            self,
            "ImageRepository",
            props=ImageRepositoryProps(repository_name=settings.repository_name),
            removal_policy=removal_policy,
        )
        self.ledger = Ledger(self, "Ledger", removal_policy=removal_policy)
        self.recipe = image_recipe(tiles=self._tile_recipe())
        source, derivatives = self.storage.source_bucket, self.storage.derivatives_bucket
        self.processing = Processing(
            self,
            "Processing",
            props=_processing_props(settings),
            vpc=self.network.vpc,
            repository=self.image_repository.repository,
            source_bucket_name=source.bucket_name,
            derivatives_bucket_name=derivatives.bucket_name,
            ledger_table_name=self.ledger.table.table_name,
            recipe=self.recipe,
            deep_zoom=DeepZoom(
                tiles=settings.tiles,
                iiif_api_version=settings.iiif_api_version,
                tile_size=settings.tile_size,
                public_base_url=self.public_base_url,
            ),
            stack_name=self.stack_name,
            log_retention=retention,
            removal_policy=removal_policy,
        )
        self.trigger = Trigger(
            self,
            "Trigger",
            props=TriggerProps(
                timeout_seconds=settings.lambda_timeout_seconds,
                memory_mib=settings.lambda_memory_mib,
                reserved_concurrency=settings.lambda_reserved_concurrency,
            ),
            environment=self._function_environment(),
            log_retention=retention,
            removal_policy=removal_policy,
        )
        self.event_queue = EventQueue(
            self,
            "EventQueue",
            props=EventQueueProps(
                batch_size=settings.queue_batch_size,
                batch_window_seconds=settings.queue_batch_window_seconds,
                function_timeout_seconds=settings.lambda_timeout_seconds,
                function_reserved_concurrency=settings.lambda_reserved_concurrency,
                s3_notifications=settings.s3_notifications,
            ),
            function=self.trigger.function,
            source_bucket=source,
        )
        self.reconcile = Reconcile(
            self,
            "Reconcile",
            props=ReconcileProps(
                timeout_seconds=settings.lambda_timeout_seconds,
                memory_mib=settings.lambda_memory_mib,
            ),
            cluster_arn=self.processing.cluster.cluster_arn,
            environment=self._reconcile_environment(),
            log_retention=retention,
            removal_policy=removal_policy,
        )

        self.processing.grant_storage(source=source, derivatives=derivatives)
        self.ledger.grant_update_items(self.processing.task_role)
        for function, role in (
            (self.trigger.function, self.trigger.role),
            (self.reconcile.function, self.reconcile.role),
        ):
            self.processing.grant_run_task(function)
            self.ledger.grant_read_write(role)
        self.trigger.grant_head_source_objects(source)
        self.event_queue.queue.grant_send_messages(self.reconcile.function)
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            stack_name=self.stack_name,
            event_queue=self.event_queue.queue,
            # Every dead-letter queue of the stack (tests/stacks/test_stack_monitoring.py finds
            # them in the template and fails if one is missing here).
            dead_letter_queues={
                "event-queue": self.event_queue.dead_letter_queue,
                "trigger": self.trigger.dead_letter_queue,
                "reconcile": self.reconcile.dead_letter_queue,
            },
            functions={"trigger": self.trigger.function, "reconcile": self.reconcile.function},
            cluster_name=self.processing.cluster.cluster_name,
            thresholds=Thresholds(
                stalled_queue_seconds=settings.stalled_queue_seconds,
                failure_rate_percent=settings.failure_rate_percent,
                failure_rate_window_minutes=settings.failure_rate_window_minutes,
            ),
            alarm_email=settings.alarm_email,
            removal_policy=removal_policy,
        )
        self._outputs()

    @property
    def public_base_url(self) -> str:
        """Where viewers read the derivatives (docs/contracts.md, `IIIF_PROCESS_PUBLIC_BASE_URL`):
        the `publicBaseUrl` setting, else the distribution, else the bucket's regional address."""
        if self.settings.public_base_url is not None:
            return self.settings.public_base_url
        if self.distribution is not None:
            return f"https://{self.distribution.domain_name}"
        return f"https://{self.storage.derivatives_bucket.bucket_regional_domain_name}"

    def _tile_recipe(self) -> TileRecipe:
        settings = self.settings
        base_url = settings.public_base_url or ("cloudfront" if settings.cloudfront else "bucket")
        return TileRecipe(
            tiles=settings.tiles,
            iiif_api_version=settings.iiif_api_version,
            tile_size=settings.tile_size,
            base_url=base_url,
        )

    @property
    def _subnet_ids(self) -> str:
        return cdk.Fn.join(",", self.network.subnet_ids)

    @property
    def _security_group_ids(self) -> str:
        return cdk.Fn.join(",", self.network.security_group_ids)

    @property
    def _assign_public_ip(self) -> str:
        return "ENABLED" if self.network.assign_public_ip else "DISABLED"

    def _function_environment(self) -> dict[str, str]:
        """The trigger's whole configuration (docs/contracts.md, "Stack → Lambda")."""
        settings, processing = self.settings, self.processing
        return {
            "IIIF_PROCESS_MODE": "lambda",
            "IIIF_PROCESS_CLUSTER": processing.cluster.cluster_name,
            "IIIF_PROCESS_TASK": processing.task_definition.task_definition_arn,
            "IIIF_PROCESS_CONTAINER": settings.container_name,
            "IIIF_PROCESS_SUBNET": self._subnet_ids,
            "IIIF_PROCESS_SECURITY_GROUP": self._security_group_ids,
            "IIIF_PROCESS_ASSIGN_PUBLIC_IP": self._assign_public_ip,
            "IIIF_PROCESS_CONFIG": CONFIG_PATH,
            "IIIF_PROCESS_INSTRUCTIONS": INSTRUCTIONS_PATH,
            "IIIF_PROCESS_REPORT": "true" if settings.report else "false",
            "IIIF_PROCESS_REPORT_NAME": settings.report_name,
            "IIIF_PROCESS_SOURCE_BUCKET": self.storage.source_bucket.bucket_name,
            "IIIF_PROCESS_MAX_URIS_PER_TASK": str(settings.max_uris_per_task),
            "IIIF_PROCESS_STRIP_PATHS": "false",
            "IIIF_PROCESS_LEDGER_TABLE": self.ledger.table.table_name,
            "IIIF_PROCESS_RECIPE": self.recipe,
            "IIIF_PROCESS_MAX_SOURCE_BYTES": str(settings.max_source_bytes),
            "IIIF_PROCESS_MAX_ATTEMPTS": str(settings.max_attempts),
            # docs/contracts.md, "Metrics": the `Stack` dimension of every metric.
            "IIIF_PROCESS_STACK_NAME": self.stack_name,
        }

    def _reconcile_environment(self) -> dict[str, str]:
        """The trigger's environment (reconcile launches tasks too) and where to re-queue."""
        return {
            **self._function_environment(),
            "IIIF_PROCESS_EVENT_QUEUE_URL": self.event_queue.queue.queue_url,
        }

    def _outputs(self) -> None:
        # Declared on the stack itself so each OutputKey is exactly its id.
        outputs = {
            "ClusterName": self.processing.cluster.cluster_name,
            "ClusterArn": self.processing.cluster.cluster_arn,
            "TaskDefinitionArn": self.processing.task_definition.task_definition_arn,
            "ContainerName": self.settings.container_name,
            "SubnetIds": self._subnet_ids,
            "SecurityGroupIds": self._security_group_ids,
            "AssignPublicIp": self._assign_public_ip,
            "FunctionName": self.trigger.function.function_name,
            "SourceBucketName": self.storage.source_bucket.bucket_name,
            "DerivativesBucketName": self.storage.derivatives_bucket.bucket_name,
            "LogGroupName": self.processing.log_group.log_group_name,
            "LogStreamPrefix": LOG_STREAM_PREFIX,
            "RepositoryUri": self.image_repository.repository.repository_uri,
            "DeadLetterQueueUrl": self.trigger.dead_letter_queue.queue_url,
            "EventQueueUrl": self.event_queue.queue.queue_url,
            "LedgerTableName": self.ledger.table.table_name,
            "ReconcileFunctionName": self.reconcile.function.function_name,
            "ReconcileQueueUrl": self.reconcile.queue.queue_url,
            "DashboardName": self.monitoring.dashboard.dashboard_name,
            "AlarmTopicArn": self.monitoring.topic.topic_arn,
            "PublicBaseUrl": self.public_base_url,
        }
        for key, value in outputs.items():
            cdk.CfnOutput(self, key, value=value)
