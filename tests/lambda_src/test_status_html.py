"""`iiif-process-ecs -mode status -html FILE`: the status as one HTML page, thumbnails of the
failed images, everything from the ledger escaped, and the page in headless Chromium (#15)."""

from __future__ import annotations

import base64
import html
import json
import shutil
import struct
import subprocess
import zlib
from pathlib import Path
from typing import Any

import boto3
import pytest
from iiif_process_ecs.status_html import (
    CONTENT_SECURITY_POLICY,
    Thumbnail,
    fetch_thumbnail,
    fetch_thumbnails,
    render_html,
)

from tests.lambda_src.conftest import REGION, Infra
from tests.lambda_src.ledger_support import create_ledger_table, put_item
from tests.lambda_src.test_ecs_trigger_cli import cli
from tests.lambda_src.test_status_retry import at, deploy_stack, start_task

ROOT = Path(__file__).resolve().parents[2]
JPEG = (ROOT / "samples" / "chelsea.jpg").read_bytes()
EVIL_KEY = "<script>alert(1)</script>.jpg"
EVIL_REASON = 'corrupt image: <img src=x onerror="alert(2)"> & more'
OOM = "task killed: out of memory (exit 137), 3 attempts"
BUCKET = "iiif-source"
BROWSER_SCRIPT = Path(__file__).with_name("status_html_browser.mjs")
PUPPETEER = ROOT / "node_modules" / "puppeteer-core"


def png(width: int = 3, height: int = 2) -> bytes:
    """A real RGB PNG (stdlib only)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def s3() -> Any:
    return boto3.client("s3", region_name=REGION)


def put_object(key: str, body: bytes, content_type: str = "binary/octet-stream") -> None:
    s3().put_object(Bucket=BUCKET, Key=key, Body=body, ContentType=content_type)


@pytest.fixture
def table(aws: None) -> str:
    return create_ledger_table()


def fill(table: str) -> None:
    """Two succeeded, one started; six failed under three reasons, their source objects:
    a JPEG, a PNG named .jpg, the JPEG under a key with markup, a TIFF, a huge JPEG, none."""
    put_item(table, uri="ok1.jpg", status="succeeded", etag="e", attempts=1, updated_at=at(1))
    put_item(table, uri="ok2.jpg", status="succeeded", etag="e", attempts=1, updated_at=at(2))
    put_item(table, uri="run.jpg", status="started", etag="e", attempts=1, updated_at=at(3))
    failures = [
        ("cat.jpg", OOM, JPEG),
        ("red.jpg", OOM, png()),
        (EVIL_KEY, EVIL_REASON, JPEG),
        ("scan.tif", "not an image: TIFF is not in the instructions", b"II*\x00" + b"\x00" * 64),
        ("huge.jpg", OOM, JPEG[:3] + b"\x00" * (2 * 1024 * 1024 + 10)),
        ("gone.jpg", "no such object", None),
    ]
    for minute, (key, reason, body) in enumerate(failures, start=10):
        put_item(
            table,
            uri=key,
            status="failed",
            etag="x",
            attempts=3,
            reason=reason,
            updated_at=at(minute),
        )
        if body is not None:
            put_object(key, body, "image/jpeg")


def write_report(infra: Infra, table: str, target: Path, *extra: str) -> tuple[int, str, str]:
    stack = deploy_stack(infra, table, "https://sqs.us-east-1.amazonaws.com/123456789012/none")
    return cli(["-stack", stack, "-mode", "status", "-html", str(target), *extra])


@pytest.fixture
def page(infra: Infra, table: str, tmp_path: Path) -> str:
    fill(table)
    status, _, _ = write_report(infra, table, tmp_path / "status.html")
    assert status == 0
    return (tmp_path / "status.html").read_text(encoding="utf-8")


# -- the page ----------------------------------------------------------------------------------


def test_html_counts_are_those_of_the_json(infra: Infra, table: str, tmp_path: Path) -> None:
    fill(table)
    status, out, _ = write_report(infra, table, tmp_path / "s.html", "-json")
    assert status == 0
    counts = json.loads(out)["counts"]
    text = (tmp_path / "s.html").read_text(encoding="utf-8")
    for name, count in counts.items():
        assert f'data-status="{name}"><b>{count}</b>' in text
    assert counts["failed"] == 6


def test_html_still_prints_the_text_status(infra: Infra, table: str, tmp_path: Path) -> None:
    fill(table)
    status, out, err = write_report(infra, table, tmp_path / "s.html")
    assert status == 0
    assert "Failures by reason:" in out
    assert f"wrote the HTML report to {tmp_path / 's.html'}" in err


def test_html_escapes_a_key_holding_markup(page: str) -> None:
    assert "<script>" not in page
    assert html.escape(EVIL_KEY) in page


def test_html_escapes_a_reason_holding_markup(page: str) -> None:
    assert 'onerror="alert(2)"' not in page
    assert html.escape(EVIL_REASON) in page


def test_html_allows_no_script_by_its_content_security_policy(page: str) -> None:
    assert "script-src" not in CONTENT_SECURITY_POLICY
    assert CONTENT_SECURITY_POLICY.startswith("default-src 'none'")
    assert (
        f'http-equiv="Content-Security-Policy" content="{html.escape(CONTENT_SECURITY_POLICY)}"'
        in page
    )


def test_html_groups_failures_by_reason_most_frequent_first(page: str) -> None:
    oom = page.index(f'<span class="n">3</span> failed: <span class="reason">{OOM}</span>')
    tiff = page.index("not an image: TIFF is not in the instructions")
    assert oom < tiff


def test_html_shows_the_cost_figures(page: str) -> None:
    assert '<section id="cost"><h2>Cost since ' in page
    assert 'id="total">$0.0000</th>' in page


def test_html_shows_the_running_tasks(infra: Infra, table: str, tmp_path: Path) -> None:
    start_task(infra)
    start_task(infra)
    write_report(infra, table, tmp_path / "s.html")
    assert '<b id="running">2</b>' in (tmp_path / "s.html").read_text(encoding="utf-8")


def test_html_says_no_failures_when_there_are_none(
    infra: Infra, table: str, tmp_path: Path
) -> None:
    write_report(infra, table, tmp_path / "s.html")
    assert "<p>No failures.</p>" in (tmp_path / "s.html").read_text(encoding="utf-8")


def test_html_embeds_the_failed_jpeg_as_a_data_uri(page: str) -> None:
    assert f'src="data:image/jpeg;base64,{base64.b64encode(JPEG).decode()}"' in page


def test_html_without_a_source_bucket_says_why_there_is_no_thumbnail(
    infra: Infra, table: str, tmp_path: Path
) -> None:
    fill(table)
    status, _, _ = cli(
        [
            "-mode",
            "status",
            "-ledger-table",
            table,
            "-cluster",
            infra.cluster,
            "-html",
            str(tmp_path / "s.html"),
        ]
    )
    text = (tmp_path / "s.html").read_text(encoding="utf-8")
    assert status == 0
    assert "<img" not in text
    assert "no thumbnail: no source bucket (-source-bucket or -stack)" in text


def test_html_with_another_mode_is_a_usage_error(tmp_path: Path) -> None:
    status, _, err = cli(["-mode", "retry", "-html", str(tmp_path / "s.html")])
    assert status == 2
    assert "-html works with -mode status" in err


def test_html_into_a_missing_folder_is_refused_before_any_aws_call(tmp_path: Path) -> None:
    target = tmp_path / "nowhere" / "s.html"
    status, _, err = cli(
        ["-mode", "status", "-ledger-table", "t", "-cluster", "c", "-html", str(target)]
    )
    assert status == 2
    assert f"folder {target.parent} does not exist" in err


def test_render_lists_failures_beyond_the_thumbnails_by_key() -> None:
    failed = [{"uri": f"k{i}.jpg", "reason": "r", "attempts": 1} for i in range(4)]
    thumbnails = {"k0.jpg": Thumbnail(None, "x")}
    text = render_html(
        {"counts": {}, "failed": failed, "running_tasks": 0},
        thumbnails,
        title="t",
        generated_at="now",
    )
    assert "<summary>3 more</summary>" in text
    assert '<li class="key">k3.jpg</li>' in text


def test_render_shows_each_cost_figure_and_the_total() -> None:
    cost = {
        "since": "2026-01-01T00:00:00.000000Z",
        "images": 124,
        "succeeded": 120,
        "failed": 4,
        "task_times_from": {"ecs": 3, "ledger": 1, "untimed": 0},
        "task_size": {"vcpu": 1, "memory_gb": 2, "architecture": "X86_64"},
        "usage": {
            "tasks": 4,
            "vcpu_seconds": 600,
            "gb_seconds": 1200,
            "s3_puts": 900,
            "lambda_requests": 8,
            "sqs_requests": 144,
        },
        "cost_usd": {
            "fargate_vcpu": 0.0067,
            "fargate_memory": 0.0015,
            "s3_put": 0.0045,
            "lambda": 0.0002,
            "sqs": 0.0001,
            "total": 0.013,
        },
        "prices": "list prices of us-east-1",
    }
    text = render_html(
        {"counts": {}, "failed": [], "running_tasks": 0, "cost": cost},
        {},
        title="t",
        generated_at="now",
    )
    assert "<h2>Cost since 2026-01-01T00:00:00.000000Z</h2>" in text
    assert "124 images (120 succeeded, 4 failed) in 4 tasks" in text
    assert '(1 vCPU / 2 GB X86_64)</td><td class="n">$0.0082</td>' in text
    assert 'S3 PUTs: 900</td><td class="n">$0.0045</td>' in text
    assert 'Lambda requests (estimate): 8</td><td class="n">$0.0002</td>' in text
    assert 'SQS requests (estimate): 144</td><td class="n">$0.0001</td>' in text
    assert 'id="total">$0.0130</th>' in text
    assert "<p>list prices of us-east-1</p>" in text


def test_render_shows_a_cost_that_could_not_be_computed() -> None:
    report = {
        "counts": {},
        "failed": [],
        "running_tasks": 0,
        "cost": {"since": "x", "error": "needs -task"},
    }
    assert "<h2>Cost</h2><p>needs -task</p>" in render_html(report, {}, title="t", generated_at="n")


# -- thumbnails --------------------------------------------------------------------------------


def test_thumbnail_type_is_sniffed_not_taken_from_the_object(network: dict[str, str]) -> None:
    put_object("looks-like.jpg", png(), "image/jpeg")
    thumbnail = fetch_thumbnail(s3(), BUCKET, "looks-like.jpg")
    assert thumbnail.data_uri == "data:image/png;base64," + base64.b64encode(png()).decode()


def test_thumbnail_of_exactly_the_limit_is_embedded(network: dict[str, str]) -> None:
    put_object("limit.jpg", JPEG)
    assert fetch_thumbnail(s3(), BUCKET, "limit.jpg", max_bytes=len(JPEG)).data_uri is not None


def test_thumbnail_one_byte_over_the_limit_says_how_large(network: dict[str, str]) -> None:
    put_object("over.jpg", JPEG)
    thumbnail = fetch_thumbnail(s3(), BUCKET, "over.jpg", max_bytes=len(JPEG) - 1)
    assert thumbnail == Thumbnail(
        None, f"too large for a thumbnail ({len(JPEG)} bytes > {len(JPEG) - 1})"
    )


def test_thumbnail_too_large_names_the_whole_objects_size_not_the_bytes_read(
    network: dict[str, str],
) -> None:
    put_object("ranged.jpg", JPEG)
    limit = len(JPEG) // 2  # the ranged GetObject reads limit + 1 bytes of the JPEG
    thumbnail = fetch_thumbnail(s3(), BUCKET, "ranged.jpg", max_bytes=limit)
    assert thumbnail == Thumbnail(None, f"too large for a thumbnail ({len(JPEG)} bytes > {limit})")


class ContentRangeAs:
    """moto's S3, except that GetObject answers with ``content_range`` as its ContentRange
    (None: no ContentRange at all)."""

    def __init__(self, content_range: str | None) -> None:
        self.content_range = content_range

    def get_object(self, **kwargs: Any) -> dict[str, Any]:
        response = s3().get_object(**kwargs)
        response.pop("ContentRange", None)
        if self.content_range is not None:
            response["ContentRange"] = self.content_range
        return response


@pytest.mark.parametrize("content_range", [None, f"bytes 0-{len(JPEG) - 1}/*"])
def test_thumbnail_without_a_total_size_gives_the_bytes_read(
    network: dict[str, str], content_range: str | None
) -> None:
    put_object("no-total.jpg", JPEG)
    thumbnail = fetch_thumbnail(ContentRangeAs(content_range), BUCKET, "no-total.jpg")
    assert thumbnail.note == f"image/jpeg, {len(JPEG)} bytes"


def test_thumbnail_of_a_tiff_says_browsers_do_not_show_it(network: dict[str, str]) -> None:
    put_object("scan.tif", b"MM\x00*" + b"\x00" * 32)
    assert fetch_thumbnail(s3(), BUCKET, "scan.tif") == Thumbnail(
        None, "TIFF: browsers do not show it"
    )


def test_thumbnail_of_svg_is_not_embedded(network: dict[str, str]) -> None:
    put_object("x.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>')
    assert fetch_thumbnail(s3(), BUCKET, "x.svg") == Thumbnail(None, "not a JPEG, PNG, GIF or WebP")


def test_thumbnail_of_webp_is_embedded_as_webp(network: dict[str, str]) -> None:
    put_object("w.webp", b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 8)
    assert fetch_thumbnail(s3(), BUCKET, "w.webp").data_uri.startswith("data:image/webp;base64,")


def test_thumbnail_of_a_deleted_object_says_so(network: dict[str, str]) -> None:
    assert fetch_thumbnail(s3(), BUCKET, "never-there.jpg") == Thumbnail(
        None, "no longer in the source bucket"
    )


def test_thumbnails_stop_at_the_per_reason_cap(network: dict[str, str]) -> None:
    for i in range(3):
        put_object(f"cap{i}.jpg", JPEG)
    failed = [{"uri": f"cap{i}.jpg", "reason": "r", "attempts": 1} for i in range(3)]
    assert list(fetch_thumbnails(s3(), BUCKET, failed, per_reason=2)) == ["cap0.jpg", "cap1.jpg"]


def test_thumbnails_stop_at_the_page_budget(network: dict[str, str]) -> None:
    for i in range(3):
        put_object(f"budget{i}.jpg", JPEG)
    failed = [{"uri": f"budget{i}.jpg", "reason": "r", "attempts": 1} for i in range(3)]
    thumbnails = fetch_thumbnails(s3(), BUCKET, failed, total_bytes=2 * len(JPEG))
    assert thumbnails["budget0.jpg"].data_uri is not None
    assert thumbnails["budget1.jpg"] == Thumbnail(None, "the page's thumbnail budget is spent")
    assert thumbnails["budget2.jpg"] == Thumbnail(None, "the page's thumbnail budget is spent")


# -- in headless Chromium ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser_view(
    tmp_path_factory: pytest.TempPathFactory, network: dict[str, str]
) -> dict[str, Any]:
    """The page of ``fill`` as headless Chromium shows it (once for the tests below)."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("no chromium (.ci/run installs Debian's chromium with apt-get)")
    if not PUPPETEER.is_dir() or shutil.which("node") is None:
        pytest.skip("no node or node_modules/puppeteer-core (make test runs npm ci)")
    folder = tmp_path_factory.mktemp("browser")
    ecs = boto3.client("ecs", region_name=REGION)
    cluster = "browser-view"
    ecs.create_cluster(clusterName=cluster)
    infra = Infra(
        cluster=cluster,
        task_definition=network["task_definition"],
        container="iiif-process",
        subnet=network["subnet"],
        security_group=network["security_group"],
        log_group="/iiif/tasks",
        source_bucket=BUCKET,
        derivatives_bucket="iiif-derivatives",
    )
    table = create_ledger_table()
    fill(table)
    start_task(infra)
    status, _, err = write_report(infra, table, folder / "status.html")
    assert status == 0, err
    done = subprocess.run(
        [
            "node",
            str(BROWSER_SCRIPT),
            chromium,
            str(folder / "status.html"),
            str(folder / "profile"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_browser_loads_the_page_without_console_errors(browser_view: dict[str, Any]) -> None:
    assert [m for m in browser_view["console"] if m["type"] in ("error", "warn")] == []
    assert browser_view["page_errors"] == []
    assert browser_view["failed_requests"] == []


def test_browser_shows_the_counts_and_running_tasks(browser_view: dict[str, Any]) -> None:
    view = browser_view["view"]
    assert view["counts"] == {
        "queued": "0",
        "started": "1",
        "succeeded": "2",
        "failed": "6",
        "skipped": "0",
    }
    assert view["running"] == "1"


def test_browser_shows_the_failure_groups(browser_view: dict[str, Any]) -> None:
    assert browser_view["view"]["groups"][0] == f"3 failed: {OOM}"
    assert f"1 failed: {EVIL_REASON}" in browser_view["view"]["groups"]


def test_browser_decodes_every_thumbnail(browser_view: dict[str, Any]) -> None:
    images = {image["alt"]: image for image in browser_view["view"]["images"]}
    assert set(images) == {"cat.jpg", "red.jpg", EVIL_KEY}
    assert all(image["complete"] and image["natural_width"] > 0 for image in images.values())
    assert images["red.jpg"]["natural_width"] == 3
    assert 0 < images["cat.jpg"]["shown_width"] <= 11 * 16  # scaled by CSS max-width: 11rem


def test_browser_shows_why_other_failures_have_no_thumbnail(browser_view: dict[str, Any]) -> None:
    placeholders = browser_view["view"]["placeholders"]
    assert sorted(placeholders) == sorted(
        [
            "no thumbnail: TIFF: browsers do not show it",
            "no thumbnail: no longer in the source bucket",
            f"no thumbnail: too large for a thumbnail ({2 * 1024 * 1024 + 13} bytes > 2097152)",
        ]
    )


def test_browser_shows_the_markup_key_as_text_and_runs_no_script(
    browser_view: dict[str, Any],
) -> None:
    assert EVIL_KEY in browser_view["view"]["keys"]
    assert browser_view["dialogs"] == []
    assert browser_view["view"]["scripts"] == 0


def test_browser_shows_the_estimated_cost(browser_view: dict[str, Any]) -> None:
    assert browser_view["view"]["total"] == "$0.0000"
    assert "Estimated cost" in browser_view["view"]["body_text"]


# -- make demo's pointers ----------------------------------------------------------------------


def test_demo_names_the_dashboard_from_the_stack_output() -> None:
    from local_aws.demo import dashboard_url

    assert dashboard_url("eu-west-1", {"DashboardName": "iiif-Dash"}) == (
        "https://console.aws.amazon.com/cloudwatch/home?region=eu-west-1#dashboards:name=iiif-Dash"
    )


def test_demo_without_a_dashboard_output_names_none() -> None:
    from local_aws.demo import dashboard_url

    assert dashboard_url("eu-west-1", {"ClusterName": "c"}) is None
