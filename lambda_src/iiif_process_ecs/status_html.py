"""``iiif-process-ecs -mode status -html FILE``: the status as one self-contained HTML page (#15).

The page is rendered from exactly the structure ``-mode status -json`` prints (counts, failures,
running tasks, cost), plus a thumbnail of each failed image where one can be made.

Thumbnails, with boto3 only (no image library in the Lambda package): a failed source object is
embedded as a ``data:`` URI, scaled by CSS, only when its first bytes say it is JPEG, PNG, GIF or
WebP (what every browser shows; the MIME type is the sniffed one, never the object's own
Content-Type) and it is at most ``THUMBNAIL_MAX_BYTES``. Anything else gets a placeholder saying
why (too large, TIFF, not an image, gone). The derivatives bucket is not used: a failed image has
no derivative of the version that failed, and one left by an earlier version would show a picture
that is not the one that failed. The page carries a Content-Security-Policy that allows no script
and only ``data:`` images, and every text from the ledger (keys and reasons are user input) is
HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError

from .ledger import STATUSES
from .status import format_report, group_by_reason, run_ledger_mode

THUMBNAIL_MAX_BYTES = 2 * 1024 * 1024
THUMBNAILS_PER_REASON = 12
THUMBNAIL_TOTAL_BYTES = 24 * 1024 * 1024
KEYS_LISTED_PER_REASON = 200
CONTENT_SECURITY_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

# First bytes → the MIME type browsers show. SVG is left out on purpose: it can carry script.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
_NOT_SHOWN = (
    (b"II*\x00", "TIFF: browsers do not show it"),
    (b"MM\x00*", "TIFF: browsers do not show it"),
)


@dataclass(frozen=True)
class Thumbnail:
    """A failed image's thumbnail: a ``data:`` URI, or ``None`` and why there is none."""

    data_uri: str | None
    note: str


def sniff(head: bytes) -> tuple[str | None, str]:
    """(MIME type a browser shows, "") or (None, why not) from an object's first bytes."""
    for magic, mime in _SIGNATURES:
        if head.startswith(magic):
            return mime, ""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp", ""
    for magic, why in _NOT_SHOWN:
        if head.startswith(magic):
            return None, why
    return None, "not a JPEG, PNG, GIF or WebP"


def fetch_thumbnail(
    s3: Any, bucket: str, key: str, max_bytes: int = THUMBNAIL_MAX_BYTES
) -> Thumbnail:
    """The source object as a ``data:`` URI when small and browser-viewable (at most
    ``max_bytes + 1`` bytes are read: one more tells a larger object)."""
    try:
        response = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{max_bytes}")
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchKey", "404", "NotFound"):
            return Thumbnail(None, "no longer in the source bucket")
        if code == "InvalidRange":  # an empty object
            return Thumbnail(None, "empty object")
        return Thumbnail(None, f"could not read it: {code or error}")
    except BotoCoreError as error:
        return Thumbnail(None, f"could not read it: {error}")
    body = response["Body"].read(max_bytes + 1)
    total = _object_size(response, len(body))
    if total > max_bytes:
        return Thumbnail(None, f"too large for a thumbnail ({total} bytes > {max_bytes})")
    mime, why = sniff(body[:16])
    if mime is None:
        return Thumbnail(None, why)
    encoded = base64.b64encode(body).decode("ascii")
    return Thumbnail(f"data:{mime};base64,{encoded}", f"{mime}, {total} bytes")


def _object_size(response: Mapping[str, Any], read: int) -> int:
    content_range = str(response.get("ContentRange") or "")
    if "/" in content_range and content_range.rsplit("/", 1)[1].isdigit():
        return int(content_range.rsplit("/", 1)[1])
    return read


def fetch_thumbnails(
    s3: Any,
    bucket: str,
    failed: Sequence[Mapping[str, Any]],
    *,
    per_reason: int = THUMBNAILS_PER_REASON,
    total_bytes: int = THUMBNAIL_TOTAL_BYTES,
    max_bytes: int = THUMBNAIL_MAX_BYTES,
) -> dict[str, Thumbnail]:
    """Thumbnails of the first ``per_reason`` failures of each reason, newest first, until the
    embedded images reach ``total_bytes`` (the page stays one that opens quickly)."""
    thumbnails: dict[str, Thumbnail] = {}
    used = 0
    for _reason, uris in _groups(failed):
        for uri in uris[:per_reason]:
            if used >= total_bytes:
                thumbnails[uri] = Thumbnail(None, "the page's thumbnail budget is spent")
                continue
            limit = min(max_bytes, total_bytes - used)
            thumbnail = fetch_thumbnail(s3, bucket, uri, limit)
            if thumbnail.note.startswith("too large") and limit < max_bytes:
                thumbnail = Thumbnail(None, "the page's thumbnail budget is spent")
            used += len(thumbnail.data_uri or "")
            thumbnails[uri] = thumbnail
    return thumbnails


def _groups(failed: Sequence[Mapping[str, Any]]) -> list[tuple[str, list[str]]]:
    groups: dict[str, list[str]] = {}
    for entry in failed:
        groups.setdefault(str(entry["reason"]), []).append(str(entry["uri"]))
    return [(reason, groups[reason]) for reason, _, _ in group_by_reason(failed)]


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


_STYLE = """
body{font:15px/1.4 system-ui,sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;color:#222}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem}
.counts{display:flex;flex-wrap:wrap;gap:.75rem}
.count{border-radius:.5rem;padding:.6rem 1rem;min-width:7rem;background:#eef}
.count b{display:block;font-size:1.6rem}
.count.failed{background:#fdd}.count.succeeded{background:#dfd}.count.skipped{background:#eee}
.group{border:1px solid #ddd;border-radius:.5rem;padding:.5rem 1rem;margin:1rem 0}
.group h3{font-size:1rem;margin:.4rem 0}
.cards{display:flex;flex-wrap:wrap;gap:.75rem}
.card{width:11rem;font-size:.8rem;word-break:break-all}
.card img{max-width:11rem;max-height:8rem;display:block;background:#f4f4f4}
.none{width:11rem;height:5rem;display:flex;align-items:center;justify-content:center;
text-align:center;background:#f4f4f4;color:#666;font-size:.75rem;padding:.25rem;
box-sizing:border-box;word-break:normal}
table{border-collapse:collapse}
td,th{padding:.2rem .8rem;text-align:left;border-bottom:1px solid #eee}
td.n{text-align:right;font-variant-numeric:tabular-nums}
"""


def render_html(
    report: Mapping[str, Any],
    thumbnails: Mapping[str, Thumbnail],
    *,
    title: str,
    generated_at: str,
) -> str:
    """The page for ``report`` (as ``-mode status -json`` prints it)."""
    counts = report.get("counts", {})
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_e(CONTENT_SECURITY_POLICY)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>iiif-process: {_e(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>iiif-process status: {_e(title)}</h1>",
        f'<p>Generated {_e(generated_at)}. Tasks still running: <b id="running">'
        f"{_e(report.get('running_tasks', 0))}</b></p>",
        '<section id="counts"><h2>Images by status</h2><div class="counts">',
    ]
    for status in STATUSES:
        parts.append(
            f'<div class="count {_e(status)}" data-status="{_e(status)}"><b>'
            f"{_e(counts.get(status, 0))}</b>{_e(status)}</div>"
        )
    parts.append("</div></section>")
    parts.append(_failures(report.get("failed", []), thumbnails))
    parts.append(_cost(report.get("cost")))
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _failures(failed: Sequence[Mapping[str, Any]], thumbnails: Mapping[str, Thumbnail]) -> str:
    if not failed:
        return '<section id="failures"><h2>Failures</h2><p>No failures.</p></section>'
    attempts = {str(entry["uri"]): entry.get("attempts", 0) for entry in failed}
    out = [f'<section id="failures"><h2>Failures by reason ({len(failed)})</h2>']
    for reason, uris in _groups(failed):
        out.append(
            f'<div class="group"><h3><span class="n">{len(uris)}</span> failed: '
            f'<span class="reason">{_e(reason)}</span></h3>'
        )
        out.append('<div class="cards">')
        shown = [uri for uri in uris if uri in thumbnails]
        for uri in shown:
            thumbnail = thumbnails[uri]
            if thumbnail.data_uri:
                picture = (
                    f'<img class="thumb" src="{_e(thumbnail.data_uri)}" alt="{_e(uri)}" '
                    f'title="{_e(thumbnail.note)}">'
                )
            else:
                picture = f'<div class="none">no thumbnail: {_e(thumbnail.note)}</div>'
            out.append(
                f'<div class="card">{picture}<span class="key">{_e(uri)}</span> '
                f"({_attempts(attempts[uri])})</div>"
            )
        out.append("</div>")
        rest = [uri for uri in uris if uri not in thumbnails]
        if rest:
            listed = rest[:KEYS_LISTED_PER_REASON]
            more = len(rest) - len(listed)
            out.append(f"<details><summary>{len(rest)} more</summary><ul>")
            out.extend(f'<li class="key">{_e(uri)}</li>' for uri in listed)
            if more:
                out.append(f"<li>… and {more} more (-mode status -json lists them all)</li>")
            out.append("</ul></details>")
        out.append("</div>")
    out.append("</section>")
    return "\n".join(out)


def _attempts(count: Any) -> str:
    return "1 attempt" if str(count) == "1" else f"{_e(count)} attempts"


def _cost(cost: Mapping[str, Any] | None) -> str:
    if not cost:
        return ""
    if "error" in cost:
        return f'<section id="cost"><h2>Cost</h2><p>{_e(cost["error"])}</p></section>'
    u, d, s = cost["usage"], cost["cost_usd"], cost["task_size"]
    timed = cost["task_times_from"]
    rows = [
        (
            f"Fargate: {u['vcpu_seconds']:g} vCPU-s, {u['gb_seconds']:g} GB-s "
            f"({s['vcpu']:g} vCPU / {s['memory_gb']:g} GB {s['architecture']})",
            d["fargate_vcpu"] + d["fargate_memory"],
        ),
        (f"S3 PUTs: {u['s3_puts']}", d["s3_put"]),
        (f"Lambda requests (estimate): {u['lambda_requests']}", d["lambda"]),
        (f"SQS requests (estimate): {u['sqs_requests']}", d["sqs"]),
    ]
    body = "".join(
        f'<tr><td>{_e(text)}</td><td class="n">${dollars:.4f}</td></tr>' for text, dollars in rows
    )
    return (
        f'<section id="cost"><h2>Cost since {_e(cost["since"])}</h2>'
        f"<p>{_e(cost['images'])} images ({_e(cost['succeeded'])} succeeded, "
        f"{_e(cost['failed'])} failed) in {_e(u['tasks'])} tasks (times from ECS "
        f"{_e(timed['ecs'])}, from the ledger {_e(timed['ledger'])}, untimed "
        f"{_e(timed['untimed'])})</p><table>{body}"
        f'<tr><th>Estimated cost</th><th class="n" id="total">${d["total"]:.4f}</th></tr>'
        f"</table><p>{_e(cost['prices'])}</p></section>"
    )


class HtmlTargetError(ValueError):
    """``-html FILE`` cannot be written there; the message names the path (exit status 2)."""


def check_html_target(path: str) -> None:
    """Refuse, before any AWS call, a FILE that is a folder or whose folder does not exist."""
    target = Path(path)
    if target.is_dir():
        raise HtmlTargetError(f"-html {path}: is a folder, want a file name")
    folder = target.parent
    if not folder.is_dir():
        raise HtmlTargetError(f"-html {path}: folder {folder} does not exist")


def write_atomically(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file beside it, so a reader never sees
    half a page."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def run_status_html(
    values: Mapping[str, Any],
    session: Any,
    stdout: TextIO,
    stderr: TextIO,
    *,
    generated_at: str,
) -> int:
    """``-mode status -html FILE``: print the status as usual (text, or JSON with -json) and
    write the page to FILE."""
    buffer = io.StringIO()
    status = run_ledger_mode("status", {**values, "json": True}, session, buffer)
    report = json.loads(buffer.getvalue())
    if values["json"]:
        stdout.write(buffer.getvalue())
    else:
        stdout.write(format_report(report, values["ledger-table"]))
    bucket = values.get("source-bucket") or ""
    if bucket:
        thumbnails = fetch_thumbnails(session.client("s3"), bucket, report["failed"])
    else:
        thumbnails = {
            uri: Thumbnail(None, "no source bucket (-source-bucket or -stack)")
            for _, uris in _groups(report["failed"])
            for uri in uris[:THUMBNAILS_PER_REASON]
        }
    title = values.get("stack") or values["ledger-table"]
    write_atomically(
        values["html"], render_html(report, thumbnails, title=title, generated_at=generated_at)
    )
    stderr.write(f"wrote the HTML report to {values['html']}\n")
    return status
