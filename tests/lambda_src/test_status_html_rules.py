"""status_html.py's own rules, without AWS: how many keys a group lists, attempts, the file."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import boto3
import pytest
from iiif_process_ecs.status_html import (
    HtmlTargetError,
    Thumbnail,
    check_html_target,
    fetch_thumbnail,
    fetch_thumbnails,
    render_html,
    write_atomically,
)

from tests.lambda_src.conftest import REGION

MIB = 1024 * 1024


def page(failed: list[dict[str, Any]], thumbnails: dict[str, Thumbnail] | None = None) -> str:
    report = {"counts": {}, "failed": failed, "running_tasks": 0}
    return render_html(report, thumbnails or {}, title="t", generated_at="now")


def test_a_group_lists_200_keys_and_counts_the_rest() -> None:
    text = page([{"uri": f"k{i:03d}.jpg", "reason": "r", "attempts": 1} for i in range(203)])
    assert (text.count('<li class="key">'), "… and 3 more" in text) == (200, True)


def test_a_failure_without_attempts_shows_zero_attempts() -> None:
    text = page([{"uri": "a.jpg", "reason": "r"}], {"a.jpg": Thumbnail(None, "x")})
    assert '<span class="key">a.jpg</span> (0 attempts)' in text


def test_one_attempt_is_singular() -> None:
    text = page([{"uri": "a.jpg", "reason": "r", "attempts": 1}], {"a.jpg": Thumbnail(None, "x")})
    assert '<span class="key">a.jpg</span> (1 attempt)' in text


def test_a_key_with_quotes_is_escaped_inside_attributes() -> None:
    thumbnails = {'a".jpg': Thumbnail("data:image/png;base64,AA==", "image/png, 1 bytes")}
    text = page([{"uri": 'a".jpg', "reason": "r", "attempts": 1}], thumbnails)
    assert 'alt="a&quot;.jpg"' in text


def test_the_page_is_readable_by_everyone(tmp_path: Path) -> None:
    target = tmp_path / "status.html"
    write_atomically(str(target), "<html></html>")
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o644


def test_a_failed_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "folder-in-the-way"
    target.mkdir()
    with pytest.raises(OSError):
        write_atomically(str(target), "<html></html>")
    assert [p.name for p in tmp_path.iterdir()] == ["folder-in-the-way"]


def test_a_folder_is_not_a_target(tmp_path: Path) -> None:
    with pytest.raises(HtmlTargetError, match="is a folder, want a file name"):
        check_html_target(str(tmp_path))


def test_a_file_in_an_existing_folder_is_a_target(tmp_path: Path) -> None:
    check_html_target(str(tmp_path / "status.html"))


@pytest.fixture
def s3(network: dict[str, str]) -> Any:
    return boto3.client("s3", region_name=REGION)


def test_a_thumbnail_is_at_most_2_mib_by_default(s3: Any) -> None:
    s3.put_object(Bucket="iiif-source", Key="big.jpg", Body=b"\xff\xd8\xff" + bytes(2 * MIB - 2))
    assert fetch_thumbnail(s3, "iiif-source", "big.jpg") == Thumbnail(
        None, f"too large for a thumbnail ({2 * MIB + 1} bytes > {2 * MIB})"
    )


def test_twelve_thumbnails_are_fetched_per_reason_by_default(s3: Any) -> None:
    for i in range(13):
        s3.put_object(Bucket="iiif-source", Key=f"twelve/{i:02d}.jpg", Body=b"\xff\xd8\xff\x00")
    failed = [{"uri": f"twelve/{i:02d}.jpg", "reason": "r", "attempts": 1} for i in range(13)]
    assert len(fetch_thumbnails(s3, "iiif-source", failed)) == 12


def test_an_empty_object_has_no_thumbnail_and_says_why(s3: Any) -> None:
    s3.put_object(Bucket="iiif-source", Key="empty.jpg", Body=b"")
    assert fetch_thumbnail(s3, "iiif-source", "empty.jpg") == Thumbnail(None, "empty object")
