"""Each construct's props validate themselves: the edges of what a construct accepts, whoever
builds it (the stack maps validated `Settings` onto them, so these never fire from `cdk synth`)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from stacks.event_queue import EventQueueProps
from stacks.image_repository import ImageRepositoryProps
from stacks.network import NetworkProps
from stacks.processing import ARM64, TASK_ARCHITECTURES, X86_64, ProcessingProps
from stacks.props import check_choice, check_range
from stacks.reconcile_function import ReconcileProps
from stacks.storage import StorageProps
from stacks.trigger_function import TriggerProps

STORAGE = StorageProps(
    source_bucket_name=None,
    derivatives_bucket_name=None,
    source_versioning=True,
    noncurrent_version_expiration_days=30,
    access_log_expiration_days=30,
)
NETWORK = NetworkProps(vpc_id=None, subnet_ids=(), security_group_ids=(), assign_public_ip=True)
IMPORTED_NETWORK = NetworkProps(
    vpc_id="vpc-0123456789abcdef0",
    subnet_ids=("subnet-0123456789abcdef0",),
    security_group_ids=("sg-0123456789abcdef0",),
    assign_public_ip=False,
)
PROCESSING = ProcessingProps(
    cpu=1024,
    memory_mib=2048,
    ephemeral_storage_gib=20,
    architecture=X86_64,
    container_name="iiif-process",
    image_tag=None,
    max_source_bytes=0,
)
IMAGE_REPOSITORY = ImageRepositoryProps(repository_name=None)
TRIGGER = TriggerProps(timeout_seconds=60, memory_mib=256, reserved_concurrency=5)
RECONCILE = ReconcileProps(timeout_seconds=60, memory_mib=256)
EVENT_QUEUE = EventQueueProps(
    batch_size=10,
    batch_window_seconds=0,
    function_timeout_seconds=60,
    function_reserved_concurrency=5,
    s3_notifications=True,
)


def _with(props: Any, **changes: Any) -> Any:
    return dataclasses.replace(props, **changes)


@pytest.mark.parametrize(
    ("props", "changes"),
    [
        (STORAGE, {"noncurrent_version_expiration_days": 36500}),
        (STORAGE, {"noncurrent_version_expiration_days": 0}),
        (STORAGE, {"access_log_expiration_days": 3653}),
        (STORAGE, {"source_bucket_name": "a-b", "derivatives_bucket_name": "c-d"}),
        (STORAGE, {"derivatives_bucket_name": "c-d"}),
        (NETWORK, {"assign_public_ip": False}),
        (IMPORTED_NETWORK, {"subnet_ids": tuple(f"subnet-{i:017x}" for i in range(16))}),
        (IMPORTED_NETWORK, {"security_group_ids": tuple(f"sg-{i:017x}" for i in range(5))}),
        (PROCESSING, {"ephemeral_storage_gib": 200}),
        (PROCESSING, {"cpu": 256, "memory_mib": 512}),
        (PROCESSING, {"cpu": 16384, "memory_mib": 122880}),
        (PROCESSING, {"architecture": ARM64}),
        (PROCESSING, {"image_tag": "v1.2.3", "max_source_bytes": 5 * 1024**4}),
        (PROCESSING, {"container_name": "a"}),
        (TRIGGER, {"timeout_seconds": 1, "memory_mib": 128, "reserved_concurrency": 1}),
        (TRIGGER, {"timeout_seconds": 900, "memory_mib": 10240, "reserved_concurrency": 1000}),
        (RECONCILE, {"timeout_seconds": 900, "memory_mib": 10240}),
        (EVENT_QUEUE, {"batch_size": 10000, "batch_window_seconds": 1}),
        (EVENT_QUEUE, {"batch_size": 1, "batch_window_seconds": 300}),
        (EVENT_QUEUE, {"function_reserved_concurrency": 1000, "s3_notifications": False}),
        (IMAGE_REPOSITORY, {"repository_name": "ab"}),
        (IMAGE_REPOSITORY, {"repository_name": "team/iiif-process"}),
        (IMAGE_REPOSITORY, {"repository_name": "a" * 256}),
    ],
)
def test_props_at_the_edges_are_accepted(props: Any, changes: dict[str, Any]) -> None:
    made = _with(props, **changes)
    assert {k: getattr(made, k) for k in changes} == changes


@pytest.mark.parametrize(
    ("props", "field", "value"),
    [
        (STORAGE, "noncurrent_version_expiration_days", -1),
        (STORAGE, "noncurrent_version_expiration_days", 36501),
        (STORAGE, "access_log_expiration_days", 2),
        (STORAGE, "source_versioning", 1),
        (STORAGE, "source_bucket_name", ""),
        (STORAGE, "derivatives_bucket_name", ""),
        (NETWORK, "subnet_ids", ("subnet-0123456789abcdef0",)),
        (NETWORK, "security_group_ids", ("sg-0123456789abcdef0",)),
        (NETWORK, "assign_public_ip", "true"),
        (NETWORK, "vpc_id", ""),
        (IMPORTED_NETWORK, "subnet_ids", ()),
        (IMPORTED_NETWORK, "security_group_ids", ()),
        (IMPORTED_NETWORK, "subnet_ids", ["subnet-0123456789abcdef0"]),
        (IMPORTED_NETWORK, "subnet_ids", tuple(f"subnet-{i:017x}" for i in range(17))),
        (IMPORTED_NETWORK, "security_group_ids", tuple(f"sg-{i:017x}" for i in range(6))),
        (PROCESSING, "cpu", 1000),
        (PROCESSING, "memory_mib", 1024),
        (PROCESSING, "memory_mib", 9216),
        (PROCESSING, "ephemeral_storage_gib", 19),
        (PROCESSING, "ephemeral_storage_gib", 201),
        (PROCESSING, "architecture", "ARM64"),
        (PROCESSING, "container_name", ""),
        (PROCESSING, "container_name", "-iiif"),
        (PROCESSING, "image_tag", ""),
        (PROCESSING, "image_tag", ".v1"),
        (PROCESSING, "max_source_bytes", -1),
        (PROCESSING, "max_source_bytes", 5 * 1024**4 + 1),
        (TRIGGER, "timeout_seconds", 0),
        (TRIGGER, "timeout_seconds", 901),
        (TRIGGER, "memory_mib", 127),
        (TRIGGER, "memory_mib", 10241),
        (TRIGGER, "reserved_concurrency", 0),
        (TRIGGER, "reserved_concurrency", 1001),
        (RECONCILE, "timeout_seconds", 901),
        (RECONCILE, "memory_mib", 127),
        (EVENT_QUEUE, "batch_size", 0),
        (EVENT_QUEUE, "batch_size", 11),
        (EVENT_QUEUE, "batch_window_seconds", 301),
        (EVENT_QUEUE, "batch_window_seconds", -1),
        (EVENT_QUEUE, "function_timeout_seconds", 0),
        (EVENT_QUEUE, "function_reserved_concurrency", 0),
        (EVENT_QUEUE, "s3_notifications", None),
        (IMAGE_REPOSITORY, "repository_name", "a"),
        (IMAGE_REPOSITORY, "repository_name", "Go-IIIF"),
        (IMAGE_REPOSITORY, "repository_name", "a" * 257),
    ],
)
def test_props_outside_the_edges_are_refused(props: Any, field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=rf"{type(props).__name__}\.{field} has the invalid"):
        _with(props, **{field: value})


def test_the_same_bucket_for_source_and_derivatives_is_refused() -> None:
    with pytest.raises(ValueError, match="derivatives_bucket_name"):
        _with(STORAGE, source_bucket_name="images", derivatives_bucket_name="images")


def test_a_batch_of_ten_needs_no_window() -> None:
    """10 is the most a batch holds without a window (11 is refused above)."""
    assert _with(EVENT_QUEUE, batch_size=10, batch_window_seconds=0).batch_size == 10


def test_visibility_timeout_is_six_function_timeouts_plus_the_window() -> None:
    props = _with(EVENT_QUEUE, function_timeout_seconds=70, batch_window_seconds=25, batch_size=20)
    assert props.visibility_timeout_seconds == 6 * 70 + 25


def test_each_architecture_setting_builds_its_image_platform() -> None:
    """The task's runtime platform is asserted on the template (test_stack_processing.py)."""
    platforms = {key: a.image_platform.platform for key, a in TASK_ARCHITECTURES.items()}
    assert platforms == {"X86_64": "linux/amd64", "ARM64": "linux/arm64"}


@dataclasses.dataclass
class _Unchecked:
    """A props-like object without checks of its own, to call the shared checks on."""

    value: Any


def test_a_range_check_refuses_a_bool() -> None:
    """True == 1, but nothing a construct counts is a yes/no."""
    with pytest.raises(ValueError, match=r"_Unchecked\.value has the invalid value True"):
        check_range(_Unchecked(True), "value", (0, 5))


def test_a_range_check_accepts_both_ends() -> None:
    check_range(_Unchecked(0), "value", (0, 5))
    check_range(_Unchecked(5), "value", (0, 5))


def test_a_choice_check_refuses_a_bool_for_a_number() -> None:
    with pytest.raises(ValueError, match="accepted: 1, 0"):
        check_choice(_Unchecked(True), "value", (1, 0))
