"""End to end on the embedded AWS: the synthesized app deployed into moto's server, the real
Lambda handler run on S3 notifications (through the event queue), the tasks run by the local
stand-in for Fargate with the project's iiif-process, derivatives checked with pyvips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import pyvips

from local_aws.sample_images import corrupt_jpeg_bytes, make_large_image, sample_photos
from local_aws.sqs_batches import deliver_one_batch, hold_event_source_mapping

from .conftest import INSTRUCTIONS, Deployed
from .iiif_expectations import derivative_key, size_is_right

# moto warns about each resource type its CloudFormation does not model (policies, CDK metadata).
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse:UserWarning")


def _dimensions(data: bytes) -> tuple[int, int]:
    image = pyvips.Image.new_from_buffer(data, "")
    return image.width, image.height


def _upload_photos(deployed: Deployed, tmp_path: Path) -> dict[str, tuple[int, int]]:
    """The sample photos plus one larger than every size box; key -> (width, height)."""
    files = [*sample_photos(), make_large_image(tmp_path / "large.jpg", 2400, 1600)]
    sizes = {}
    for path in files:
        data = path.read_bytes()
        deployed.upload(path.name, data)
        sizes[path.name] = _dimensions(data)
    deployed.wait_for_tasks()
    return sizes


def test_every_instruction_yields_a_derivative_of_the_right_size(
    deployed: Deployed, tmp_path: Path
) -> None:
    sources = _upload_photos(deployed, tmp_path)
    keys = deployed.derivative_keys()

    wrong = []
    for uri, source_size in sources.items():
        for label, spec in INSTRUCTIONS.items():
            key = derivative_key(uri, spec)
            if key not in keys:
                wrong.append(f"{label}: {key} missing")
                continue
            got = _dimensions(deployed.read_derivative(key))
            if not size_is_right(spec, source_size, got):
                wrong.append(f"{label}: {key} is {got[0]}x{got[1]} for a {source_size} source")
    assert wrong == []


def test_each_image_gets_a_report_next_to_its_derivatives(
    deployed: Deployed, tmp_path: Path
) -> None:
    sources = _upload_photos(deployed, tmp_path)

    for uri in sources:
        report = json.loads(deployed.read_derivative(f"{uri}/process.json"))
        assert set(report["dimensions"]) == set(INSTRUCTIONS), uri
        assert report["uris"]["n"] == derivative_key(uri, INSTRUCTIONS["n"])


def test_a_non_image_upload_starts_no_task(deployed: Deployed) -> None:
    deployed.upload("notes.txt", b"not an image")
    deployed.upload("folder/", b"")

    deployed.wait_for_tasks()
    assert deployed.task_arns() == []


def test_unsafe_and_non_image_keys_given_directly_start_no_task(deployed: Deployed) -> None:
    uris = ["../escape.jpg", "-rf.jpg", "a//b.jpg", "notes.txt"]

    response = deployed.invoke({"uris": uris})

    deployed.wait_for_tasks()
    assert deployed.task_arns() == []
    assert response["launched"] == []
    reported = {e["uri"]: e["reason"] for e in response["skipped"] + response["failed"]}
    assert set(reported) == set(uris)
    assert all(reported.values())


def test_a_corrupt_image_fails_alone_while_its_batch_mates_succeed(deployed: Deployed) -> None:
    good = [p.name for p in sample_photos()[:2]]
    for name in good:
        deployed.upload(name, (Path(sample_photos()[0].parent) / name).read_bytes())
    deployed.upload("broken.jpg", corrupt_jpeg_bytes())
    deployed.wait_for_tasks()
    s3 = deployed.client("s3")
    for key in deployed.derivative_keys():  # start from an empty cache: only the batch writes
        s3.delete_object(Bucket=deployed.derivatives, Key=key)

    # Forced: the ledger would skip the two photos as unchanged since the uploads above.
    response = deployed.invoke({"uris": [good[0], "broken.jpg", good[1]], "force": True})
    runs = [r for r in deployed.wait_for_tasks() if r.task_arn in response["tasks"]]

    assert len(runs) == 1 and runs[0].exit_code != 0
    keys = deployed.derivative_keys()
    for name in good:
        assert {derivative_key(name, spec) for spec in INSTRUCTIONS.values()} <= keys
    assert not [k for k in keys if k.startswith("broken.jpg/") and not k.endswith(".json")]
    assert any("broken.jpg" in line for line in runs[0].output)


def test_a_duplicated_s3_event_starts_no_second_task(deployed: Deployed) -> None:
    deployed.upload("rocket.jpg", (sample_photos()[0].parent / "rocket.jpg").read_bytes())
    deployed.wait_for_tasks()
    (delivered,) = [i for i in deployed.trigger_invocations() if json.loads(i.result)["launched"]]
    first_tasks = deployed.task_arns()

    # The same SQS message again: S3 notified twice, or SQS delivered the message twice.
    deployed.invoke(delivered.event, invocation_type="Event")
    deployed.wait_for_tasks()

    assert len(first_tasks) == 1
    assert deployed.task_arns() == first_tasks


def test_notifications_reach_the_function_through_the_event_queue(deployed: Deployed) -> None:
    deployed.upload("coffee.jpg", (sample_photos()[0].parent / "coffee.jpg").read_bytes())
    deployed.wait_for_tasks()

    (delivered,) = [i for i in deployed.trigger_invocations() if json.loads(i.result)["launched"]]
    # The batch may also hold the s3:TestEvent S3 sent when the stack set up its notifications.
    (record,) = [r for r in delivered.event["Records"] if "coffee.jpg" in r["body"]]
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"].endswith(deployed.stack["EventQueueUrl"].rsplit("/", 1)[1])
    assert json.loads(record["body"])["Records"][0]["s3"]["object"]["key"] == "coffee.jpg"


def test_queued_uploads_delivered_as_one_batch_start_one_task(deployed: Deployed) -> None:
    names = [p.name for p in sample_photos()[:3]]
    queue_url, function = deployed.stack["EventQueueUrl"], deployed.stack["FunctionName"]
    with hold_event_source_mapping(deployed.env.aws, function, queue_url):
        for name in names:
            deployed.upload(name, (sample_photos()[0].parent / name).read_bytes())
        delivered = deliver_one_batch(deployed.env.aws, function, queue_url, batch_size=1000)
    runs = deployed.wait_for_tasks()

    assert len(runs) == 1, [(r.command[-8:], r.exit_code, r.stopped_reason) for r in runs]
    assert delivered.response["failed"] == [], delivered.response
    assert sorted(e["uri"] for e in delivered.response["launched"]) == sorted(names)
    assert delivered.response["batchItemFailures"] == []
    assert delivered.deleted == delivered.messages >= len(names)
    assert runs[0].exit_code == 0


def test_a_task_writes_its_output_to_its_awslogs_stream(deployed: Deployed) -> None:
    deployed.upload("coffee.jpg", (sample_photos()[0].parent / "coffee.jpg").read_bytes())
    (run,) = deployed.wait_for_tasks()

    stream = f"{deployed.stack['LogStreamPrefix']}/{deployed.stack['ContainerName']}/{run.task_id}"
    events = deployed.client("logs").get_log_events(
        logGroupName=deployed.stack["LogGroupName"], logStreamName=stream
    )["events"]
    assert [e["message"] for e in events] == run.output
    task = deployed.client("ecs").describe_tasks(
        cluster=deployed.stack["ClusterName"], tasks=[run.task_arn]
    )["tasks"][0]
    assert (task["lastStatus"], task["containers"][0]["exitCode"]) == ("STOPPED", 0)


def test_the_deployed_task_definition_keeps_its_task_size_and_roles(deployed: Deployed) -> None:
    definition = deployed.client("ecs").describe_task_definition(
        taskDefinition=deployed.stack["TaskDefinitionArn"]
    )["taskDefinition"]

    assert (definition["cpu"], definition["memory"]) == ("1024", "2048")
    assert definition["taskRoleArn"] and definition["executionRoleArn"]
