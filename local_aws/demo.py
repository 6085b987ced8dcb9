"""`make demo`: the whole pipeline on an embedded AWS, driven the way a user drives real AWS.

Starts moto's server (with the Lambda runner, RunTask tokens and the task runner), deploys the app
with `cdk bootstrap` and `cdk deploy`, uploads sample images with `aws s3 cp` (S3 notification ->
the SQS event queue -> one batch to the real Lambda handler -> ECS RunTask -> the task runner runs
iiif-process), reprocesses with
`iiif-process-ecs -stack ... -mode invoke -wait` and with `aws lambda invoke`, then copies the
derivatives and reports into demo-output/ with an index.html and, for the deep-zoom viewer
(`python -m local_aws.viewer`, issue #11), viewer.json. Then a poison image kills its task
(out of memory): the task state event goes through EventBridge and the reconcile queue to the
reconcile function, which re-drives the batch mates and re-runs the poison alone until it fails
after its attempts; a re-upload of an unchanged image is skipped; `iiif-process-ecs -mode status`
shows the ledger; and a summary.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from local_aws.deploy import (
    DEFAULT_STACK,
    EMULATOR_ONLY_MESSAGE,
    IMAGE_SKIPPED_MESSAGE,
    LOCAL_IMAGE_TAG,
    LOCAL_REPOSITORY_NAME,
    DeployedStack,
    DeployError,
    bootstrap,
    deploy,
)
from local_aws.emulator import PIECES, LocalAws, local_aws
from local_aws.gallery import write_gallery
from local_aws.poison import over_budget_image
from local_aws.sample_images import (
    make_corrupt_jpeg,
    make_large_image,
    make_poison_image,
    sample_photos,
)
from local_aws.server import EmbeddedAws
from local_aws.sqs_batches import PolledBatch, deliver_one_batch, hold_event_source_mapping
from local_aws.task_runner import TaskRun
from local_aws.viewer import COMMAND as VIEWER_COMMAND
from local_aws.viewer import DEFAULT_SITE as VIEWER_SITE
from local_aws.viewer import Site

PROJECT_ROOT = Path(__file__).resolve().parent.parent
OUTPUT_DIR = PROJECT_ROOT / "demo-output"
STATUS_PAGE = OUTPUT_DIR / "status.html"
STEPS = 10
LARGE_IMAGE_KEY = "large/coffee-6000x4000.jpg"
CORRUPT_IMAGE_KEY = "broken.jpg"
NON_IMAGE_KEY = "notes.txt"
POISON_KEY = "big/poison-12000x12000.jpg"  # first in its batch: keys go in sorted order
#: The smallest Fargate task, so that the poison image outgrows it quickly.
TASK_SIZE = {"cpu": "256", "memoryMiB": "512"}
#: Lambda's pollers here gather a batch for at most this long (the stack's default is 30 s).
BATCH_WINDOW_CAP_SECONDS = 1.0
#: The CloudFront stand-in's port when it is free. The viewer serves the demo's copy of the
#: derivatives on the same URL after the demo, since every info.json and manifest names it.
DISTRIBUTION_PORT = 8182

_print_lock = threading.Lock()


def say(text: str = "") -> None:
    """Print a line whole, also from the task runner's threads."""
    with _print_lock:
        print(text, flush=True)


def heading(number: int, title: str) -> None:
    say()
    say(f"== {number}/{STEPS} {title} " + "=" * max(0, 70 - len(title)))


def command_line(args: list[str]) -> str:
    shown = [Path(a).name if a.startswith(str(PROJECT_ROOT)) and "/bin/" in a else a for a in args]
    return "$ " + " ".join(f"'{a}'" if (" " in a or "{" in a) else a for a in shown)


def run_tool(
    aws: EmbeddedAws,
    args: list[str],
    check: bool = True,
    transcript: Path | None = None,
    max_lines: int = 60,
) -> subprocess.CompletedProcess[str]:
    """Run a CLI of the venv (aws, iiif-process-ecs) against the emulator, echoing its output.

    At most `max_lines` lines are echoed; with `transcript`, the whole output is saved there.
    """
    say(command_line(args))
    executable = Path(sys.executable).parent / args[0]
    completed = subprocess.run(
        [str(executable), *args[1:]],
        cwd=PROJECT_ROOT,
        env=aws.child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    lines = completed.stdout.splitlines()
    for line in lines[:max_lines]:
        say(f"    {line}")
    if len(lines) > max_lines:
        where = f"; all of it in {transcript.relative_to(PROJECT_ROOT)}" if transcript else ""
        say(f"    ... ({len(lines) - max_lines} more lines{where})")
    if transcript is not None:
        transcript.write_text(completed.stdout, encoding="utf-8")
    if check and completed.returncode != 0:
        raise RuntimeError(f"{args[0]} exited with status {completed.returncode}")
    return completed


def on_task(event: str, run: TaskRun) -> None:
    uris = [run.command[i + 1] for i, a in enumerate(run.command[:-1]) if a == "-uri"]
    if event == "started":
        say(f"    [fargate stand-in] task {run.task_id[:8]} started: {', '.join(uris)}")
        for note in run.notes:
            say(f"    [fargate stand-in]   note: {note}")
    else:
        reason = f"{run.stop_code}: {run.stopped_reason}"
        if run.container_reason:
            reason += f"; container: {run.container_reason}"
        say(
            f"    [fargate stand-in] task {run.task_id[:8]} stopped: exit {run.exit_code} "
            f"after {run.seconds:.1f} s ({reason})"
        )


_reconcile_function: list[str] = []


def on_batch(batch: PolledBatch) -> None:
    """Show the reconcile function's batches (the trigger's are shown by the steps)."""
    if not _reconcile_function or batch.function_name != _reconcile_function[0]:
        return
    response = batch.delivered.response
    reports = response.get("tasks", []) if isinstance(response, dict) else []
    for report in reports if isinstance(reports, list) else []:
        if not isinstance(report, dict):
            continue
        task = str(report.get("task_arn", ""))[-36:][:8]
        rerun = [r.get("uri") for r in report.get("rerun", [])]
        failed = [f"{f.get('uri')} ({f.get('reason')})" for f in report.get("failed", [])]
        parts = [
            f"re-run alone {rerun}" if rerun else "",
            f"re-queued {report.get('requeued')}" if report.get("requeued") else "",
            f"failed {failed}" if failed else "",
        ]
        done = "; ".join(p for p in parts if p)
        if done:  # a task that finished its keys leaves nothing to do: not shown
            say(f"    [reconcile] stopped task {task}: {done}")


def stage_uploads(folder: Path) -> dict[str, str]:
    """The files `aws s3 cp --recursive` uploads; key -> what it is."""
    staged: dict[str, str] = {}
    for photo in sample_photos():
        shutil.copy(photo, folder / photo.name)
        staged[photo.name] = "photo (samples/)"
    make_large_image(folder / LARGE_IMAGE_KEY)
    staged[LARGE_IMAGE_KEY] = "6000x4000 image made now from samples/coffee.jpg"
    make_corrupt_jpeg(folder / CORRUPT_IMAGE_KEY)
    staged[CORRUPT_IMAGE_KEY] = "corrupt JPEG made now (must fail alone)"
    (folder / NON_IMAGE_KEY).write_text("not an image: S3's suffix filter never notifies\n")
    staged[NON_IMAGE_KEY] = "not an image (must start no task)"
    return staged


def step_start(env: LocalAws) -> None:
    heading(1, "Start the embedded AWS")
    say(
        f"    moto server: {env.aws.endpoint_url} (region {env.aws.region}, account "
        f"{env.aws.account_id}, test credentials; nothing leaves this machine)"
    )
    for piece, stands_in_for in PIECES.items():
        say(f"    - {piece}: {stands_in_for}")


def step_deploy(env: LocalAws) -> tuple[DeployedStack, float]:
    heading(2, f"cdk bootstrap + cdk deploy {DEFAULT_STACK}")
    started = time.monotonic()
    say(f"$ cdk bootstrap aws://{env.aws.account_id}/{env.aws.region}")
    bootstrap(env.aws)
    say(f"    done in {time.monotonic() - started:.1f} s")
    size = " ".join(f"-c {k}={v}" for k, v in TASK_SIZE.items())
    say(
        f"$ cdk synth --output cdk.out.local -c imageTag={LOCAL_IMAGE_TAG} "
        f"-c repositoryName={LOCAL_REPOSITORY_NAME} {size}"
    )
    say(
        f"$ cdk deploy {DEFAULT_STACK} --app cdk.out.local --require-approval never --method direct"
    )
    say(f"    NOTE: {IMAGE_SKIPPED_MESSAGE}")
    say(f"    NOTE: {EMULATOR_ONLY_MESSAGE}")
    say(
        f"    The tasks get Fargate's smallest size ({size}), so that step 7's poison image "
        "outgrows its task quickly."
    )
    assert env.distribution is not None
    say(f"    -c publicBaseUrl={env.distribution.url}")
    say(
        "    NOTE: moto cannot create the stack's CloudFront distribution; "
        "local_aws/distribution.py plays it on"
    )
    say(
        f"    {env.distribution.url} (the derivatives bucket, with Content-Type and CORS), "
        "deployed as publicBaseUrl:"
    )
    say("    the tasks write it into every info.json and manifest.json, as the CloudFront domain.")
    stack = deploy(
        env.aws, DEFAULT_STACK, extra_context=TASK_SIZE, public_base_url=env.distribution.url
    )
    seconds = time.monotonic() - started
    say(f"    deployed in {seconds:.1f} s (bootstrap + deploy)")
    if env.skipped_resource_types:
        say(
            "    NOTE: moto's CloudFormation does not model "
            f"{', '.join(sorted(env.skipped_resource_types))}; it deployed the rest "
            "(moto enforces no resource policies anyway)."
        )
    for key in (
        "SourceBucketName",
        "DerivativesBucketName",
        "FunctionName",
        "ClusterName",
        "PublicBaseUrl",
    ):
        say(f"    {key:22} {stack[key]}")
    return stack, seconds


def step_upload(env: LocalAws, stack: DeployedStack, staging: Path) -> dict[str, str]:
    heading(3, "Upload images with aws s3 cp (S3 -> SQS event queue -> Lambda -> ECS RunTask)")
    staged = stage_uploads(staging)
    for key, what in staged.items():
        say(f"    {key:28} {what}")
    function, queue_url = stack["FunctionName"], stack["EventQueueUrl"]
    say("    On AWS, Lambda's SQS event source mapping batches the queued S3 notifications: up to")
    say("    queueBatchSize (default 1000) per invocation, gathered for up to")
    say("    queueBatchWindowSeconds (default 30), packed maxUrisPerTask (default 50) to a task.")
    cap = f"{BATCH_WINDOW_CAP_SECONDS:g}"
    say(f"    Here local_aws/sqs_batches.py plays Lambda's pollers (window capped at {cap} s).")
    say("    So that the whole upload is one batch, the demo pauses")
    say("    the mapping during the upload, then delivers the queued messages as one batch, as")
    say("    the poller would (ReceiveMessage, one Invoke, DeleteMessage).")
    before = len(env.invocations)
    with hold_event_source_mapping(env.aws, function, queue_url) as mapping:
        run_tool(
            env.aws,
            [
                "aws",
                "s3",
                "cp",
                str(staging),
                f"s3://{stack['SourceBucketName']}/",
                "--recursive",
                "--only-show-errors",
            ],
        )
        batch = deliver_one_batch(env.aws, function, queue_url, int(mapping["BatchSize"]))
    failures = batch.response.get("batchItemFailures", [])
    say(
        f"    [sqs poller] {batch.messages} queued messages -> 1 invocation; "
        f"{batch.deleted} deleted, {len(failures)} left for redelivery"
    )
    for invocation in env.invocations[before:]:
        if invocation.function_name != stack["FunctionName"]:
            continue
        result = json.loads(invocation.result)
        launched = [e["uri"] for e in result.get("launched", [])]
        say(
            f"    [lambda] {invocation.seconds:.1f} s: launched {launched}"
            + (f", skipped {result['skipped']}" if result.get("skipped") else "")
            + (f", failed {result['failed']}" if result.get("failed") else "")
        )
    return staged


def step_tasks(env: LocalAws) -> list[TaskRun]:
    heading(4, "The started tasks run locally (the stand-in for Fargate)")
    runs = env.tasks.wait_until_idle(timeout=300)
    for run in runs:
        uris = [run.command[i + 1] for i, a in enumerate(run.command[:-1]) if a == "-uri"]
        say(
            f"    task {run.task_id[:8]}  exit {run.exit_code}  {run.seconds:5.1f} s  "
            f"{', '.join(uris)}"
        )
    say("    (each task's output is in CloudWatch Logs, stream iiif-process/iiif-process/TASK_ID)")
    return runs


def step_show(env: LocalAws, stack: DeployedStack) -> None:
    heading(5, "Reprocess as a user would: iiif-process-ecs -wait, then aws lambda invoke")
    say("    The CLI invokes the deployed Lambda, waits for its task, and prints the task's exit")
    say("    code, CloudWatch log and reports. The ledger holds astronaut.jpg as succeeded and")
    say(f"    unchanged, so it is skipped; {CORRUPT_IMAGE_KEY} fails again, so the CLI exits 1")
    say('    (expected). Below, "force": true reprocesses unchanged images all the same.')
    completed = run_tool(
        env.aws,
        [
            "iiif-process-ecs",
            "-stack",
            stack.name,
            "-mode",
            "invoke",
            "-uri",
            "astronaut.jpg",
            "-uri",
            CORRUPT_IMAGE_KEY,
            "-wait",
            "-wait-interval",
            "1",
        ],
        check=False,
        transcript=OUTPUT_DIR / "iiif-process-ecs-wait.txt",
        max_lines=40,
    )
    say(f"    iiif-process-ecs exit status: {completed.returncode}")
    payload = {
        "uris": ["chelsea.jpg", "coffee.jpg", "rocket.jpg", "../escape.jpg", NON_IMAGE_KEY],
        "force": True,
    }
    response_file = OUTPUT_DIR / "lambda-response.json"
    run_tool(
        env.aws,
        [
            "aws",
            "lambda",
            "invoke",
            "--function-name",
            stack["FunctionName"],
            "--payload",
            json.dumps(payload),
            str(response_file),
        ],
    )
    say(f"$ cat {response_file.relative_to(PROJECT_ROOT)}")
    for line in json.dumps(json.loads(response_file.read_text()), indent=2).splitlines():
        say(f"    {line}")
    env.tasks.wait_until_idle(timeout=300)


def step_collect(
    env: LocalAws, stack: DeployedStack, staged: dict[str, str]
) -> tuple[Site, int, int, int]:
    """Returns the viewer's site and the numbers of derivatives, reports and deep-zoom tiles."""
    heading(6, "Copy derivatives, tiles and reports to demo-output/")
    target = OUTPUT_DIR / "derivatives"
    run_tool(
        env.aws,
        [
            "aws",
            "s3",
            "cp",
            f"s3://{stack['DerivativesBucketName']}/",
            str(target),
            "--recursive",
            "--only-show-errors",
        ],
    )
    images = [k for k in staged if k != NON_IMAGE_KEY]
    page, derivatives, reports, tiles = write_gallery(target, images, OUTPUT_DIR / "index.html")
    folder = target.relative_to(PROJECT_ROOT)
    say(
        f"    {derivatives} derivatives, {tiles} deep-zoom tiles and {reports} reports in {folder}/"
    )
    say(
        f"    open {page.relative_to(PROJECT_ROOT)} to see every derivative with its label and size"
    )
    # The images the task published for deep zoom (info.json is written after every tile).
    zoomable = tuple(k for k in images if (target / k / "info.json").is_file())
    site = Site(public_base_url=stack["PublicBaseUrl"], images=zoomable, derivatives=target)
    site.save(VIEWER_SITE)
    say(
        f"    {len(zoomable)} images have an info.json and a manifest.json; "
        f"{VIEWER_SITE.relative_to(PROJECT_ROOT)} lists them for the viewer"
    )
    return site, derivatives, reports, tiles


def _trigger_results(env: LocalAws, stack: DeployedStack, since: int) -> list[dict[str, Any]]:
    return [
        json.loads(i.result)
        for i in env.invocations[since:]
        if i.function_name == stack["FunctionName"] and not i.errored
    ]


def _ledger_item(env: LocalAws, stack: DeployedStack, uri: str) -> dict[str, str]:
    item = (
        env.aws.client("dynamodb")
        .get_item(TableName=stack["LedgerTableName"], Key={"uri": {"S": uri}}, ConsistentRead=True)
        .get("Item", {})
    )
    return {k: next(iter(v.values())) for k, v in item.items()}


def step_poison(env: LocalAws, stack: DeployedStack, staging: Path) -> list[TaskRun]:
    heading(7, "A poison image kills its task; reconcile re-drives its batch mates")
    say("    iiif-process reads its task's memory limit and refuses an image it cannot hold, so")
    say("    an honest poison image never reaches the limit. To show what happens when it does")
    say("    (any image whose memory the tool misjudges), the tasks of this step run with")
    say("    iiif_process.memory_budget_mb 4096 baked into config.json, 8x the task's 512 MiB")
    say("    (local_aws/poison.py). The local task runner enforces the task's memory with")
    say(f"    {env.tasks.memory.description}.")
    folder = staging.parent / "poison-upload"
    (folder / "mates").mkdir(parents=True, exist_ok=True)
    sources = [*sample_photos(), staging / LARGE_IMAGE_KEY]
    mates = [f"mates/{source.name}" for source in sources]
    for source, key in zip(sources, mates, strict=True):
        shutil.copy(source, folder / key)
    make_poison_image(folder / POISON_KEY)
    say(f"    {POISON_KEY:32} 12000x12000 JPEG (432 MB decoded), uploaded with")
    say(f"    {'mates/*':32} {len(mates)} images processed before under other keys")
    normal_image = env.tasks.image
    env.tasks.image = over_budget_image(OUTPUT_DIR / "poison-image")
    function, queue_url = stack["FunctionName"], stack["EventQueueUrl"]
    try:
        with hold_event_source_mapping(env.aws, function, queue_url) as mapping:
            run_tool(
                env.aws,
                [
                    "aws",
                    "s3",
                    "cp",
                    str(folder),
                    f"s3://{stack['SourceBucketName']}/",
                    "--recursive",
                    "--only-show-errors",
                ],
            )
            deliver_one_batch(env.aws, function, queue_url, int(mapping["BatchSize"]))
        say(f"    [sqs poller] the {len(mates) + 1} uploads -> 1 invocation -> 1 task")
        runs = env.wait_until_idle(timeout=300)
    finally:
        env.tasks.image = normal_image
    poison_runs = [r for r in runs if POISON_KEY in r.command]
    say(f"    The poison ran in {len(poison_runs)} tasks: first with its batch mates, then alone:")
    for run in poison_runs:
        uris = [run.command[i + 1] for i, a in enumerate(run.command[:-1]) if a == "-uri"]
        say(f"      task {run.task_id[:8]}  exit {run.exit_code}  {run.container_reason}  {uris}")
    say("    The ledger now says:")
    for key in [*mates, POISON_KEY]:
        item = _ledger_item(env, stack, key)
        reason = f"  reason: {item['reason']}" if item.get("reason") else ""
        say(f"      {key:32} {item.get('status')}  attempts {item.get('attempts')}{reason}")
    derivatives = env.aws.client("s3").list_objects_v2(
        Bucket=stack["DerivativesBucketName"], Prefix="mates/"
    )
    say(f"    mates/ derivatives published: {derivatives.get('KeyCount', 0)}")
    return poison_runs


def step_unchanged(env: LocalAws, stack: DeployedStack) -> None:
    heading(8, "Re-upload an unchanged image: skipped, no task")
    before = len(env.invocations)
    tasks_before = len(env.tasks.runs)
    run_tool(
        env.aws,
        [
            "aws",
            "s3",
            "cp",
            str(sample_photos()[0].parent / "coffee.jpg"),
            f"s3://{stack['SourceBucketName']}/coffee.jpg",
            "--only-show-errors",
        ],
    )
    env.wait_until_idle(timeout=120)
    for result in _trigger_results(env, stack, before):
        for entry in result.get("skipped", []):
            say(f"    [lambda] skipped {entry['uri']}: {entry['reason']}")
    say(f"    tasks started: {len(env.tasks.runs) - tasks_before}")


def dashboard_url(region: str, outputs: dict[str, str]) -> str | None:
    """Where the stack's CloudWatch dashboard is on AWS (None when the stack declares none)."""
    name = outputs.get("DashboardName")
    if not name:
        return None
    return f"https://console.aws.amazon.com/cloudwatch/home?region={region}#dashboards:name={name}"


def step_status(env: LocalAws, stack: DeployedStack) -> None:
    heading(9, "The ledger as a user sees it (and as a page: -html)")
    run_tool(
        env.aws,
        [
            "iiif-process-ecs",
            "-stack",
            stack.name,
            "-mode",
            "status",
            "-html",
            str(STATUS_PAGE.relative_to(PROJECT_ROOT)),
        ],
        check=False,
        transcript=OUTPUT_DIR / "iiif-process-ecs-status.txt",
    )


def _interrupt_on_signals() -> None:
    """Ctrl-C and SIGTERM unwind the `with` blocks, so the emulator and its children stop."""

    def stop(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    # Explicit: a shell that starts us in the background hands SIGINT over ignored.
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)


def distribution_port() -> int | None:
    """`DISTRIBUTION_PORT` if nothing listens on it, else None (a free one is chosen)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", DISTRIBUTION_PORT))
        except OSError:
            return None
    return DISTRIBUTION_PORT


def main() -> int:
    started = time.monotonic()
    _interrupt_on_signals()
    shutil.rmtree(OUTPUT_DIR, ignore_errors=True)
    OUTPUT_DIR.mkdir(parents=True)
    staging = OUTPUT_DIR / "uploaded"
    staging.mkdir()
    try:
        with local_aws(
            on_task=on_task,
            on_batch=on_batch,
            batch_window_cap=BATCH_WINDOW_CAP_SECONDS,
            distribution_port=distribution_port(),
        ) as env:
            step_start(env)
            stack, deploy_seconds = step_deploy(env)
            _reconcile_function[:] = [stack["ReconcileFunctionName"]]
            staged = step_upload(env, stack, staging)
            step_tasks(env)
            step_show(env, stack)
            site, derivatives, reports, tiles = step_collect(env, stack, staged)
            poison_runs = step_poison(env, stack, staging)
            step_unchanged(env, stack)
            step_status(env, stack)
            runs = env.wait_until_idle()
            invocations = [i for i in env.invocations if i.function_name == stack["FunctionName"]]
    except (DeployError, RuntimeError, TimeoutError) as error:
        say(f"\ndemo failed: {error}")
        return 1
    except KeyboardInterrupt:
        say("\ninterrupted; the embedded AWS has been stopped")
        return 130
    heading(10, "Summary")
    images = len([k for k in staged if k != NON_IMAGE_KEY])
    failed = [r for r in runs if r.exit_code != 0]
    say(f"    images uploaded     {images} (+1 non-image file, which started nothing)")
    say(f"    derivatives         {derivatives} (+{tiles} deep-zoom tiles, {reports} reports)")
    say(f"    Lambda invocations  {len(invocations)}")
    say(
        f"    ECS tasks           {len(runs)} ({len(failed)} exited non-zero: the ones given "
        f"{CORRUPT_IMAGE_KEY} and the {len(poison_runs)} given the poison, as intended)"
    )
    say(f"    seconds             {time.monotonic() - started:.0f} (deploy {deploy_seconds:.0f})")
    say(f"    output              {(OUTPUT_DIR / 'index.html').relative_to(PROJECT_ROOT)}")
    if STATUS_PAGE.exists():
        say(f"    status page         {STATUS_PAGE.relative_to(PROJECT_ROOT)}")
    else:
        say("    status page         not written (see step 9)")
    url = dashboard_url(env.aws.region, stack.outputs)
    say(f"    dashboard on AWS    {url or 'none: the stack has no DashboardName output'}")
    say()
    if site.images:
        say(
            f"Deep zoom: {len(site.images)} images in OpenSeadragon and Mirador on localhost "
            "(Ctrl-C to stop):"
        )
        say(f"    {VIEWER_COMMAND}")
    else:
        say("Deep zoom: no image has an info.json (tiles off?); nothing for the viewer.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
