"""SIGTERM (#8 item 4; Fargate stop, Spot reclaim, scale-in): the real command, stopped in the
middle of a batch, takes no new image, finishes or abandons the one in progress without
publishing part of it, prints an entry for every URI and exits 143; also as PID 1."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from iiif_process.defaults import DEFAULT_INSTRUCTIONS
from iiif_process.pool import ABANDONED, DEFAULT_STOP_SECONDS, PUBLISH_GRACE
from iiif_process.process_cli import LEDGER_FLUSH_SECONDS

from . import iiif_images as gen
from .conftest import Workspace
from .test_iiif_ledger import ledger_env  # noqa: F401 - a fixture

TOOL = str(Path(sys.executable).parent / "iiif-process")
URIS = [f"{i}.jpg" for i in range(5)]
# Every published image has go-iiif's default derivatives and its report.
FULL_SET = len(DEFAULT_INSTRUCTIONS) + 1


@dataclass
class Stopped:
    """A run stopped by SIGTERM: exit status, stdout object, and the derivatives folder."""

    status: int
    results: dict[str, Any]
    out: Path

    def published(self, uri: str) -> set[str]:
        """The files written for ``uri``."""
        folder = self.out / uri
        return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five 12 MP photographs (each a second or so of work on one CPU)."""
    folder = tmp_path_factory.mktemp("sigterm-src")
    data = gen.jpeg(gen.gradient(4000, 3000), Q=90)
    for uri in URIS:
        (folder / uri).write_bytes(data)
    return folder


def _lines(stream: Any, into: queue.Queue[str]) -> None:
    for line in iter(stream.readline, ""):
        into.put(line)
    into.put("")


def _wait_for(lines: queue.Queue[str], message: str, uri: str, seen: list[str]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        seen.append(line)
        if not line:
            raise AssertionError("the tool ended before the moment to stop it:\n" + "".join(seen))
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if entry.get("message") == message and entry.get("uri") == uri:
            return
    raise AssertionError(f"no {message!r} log for {uri}:\n" + "".join(seen))


def _stop_mid_batch(
    tmp_path: Path,
    sources: Path,
    stop_seconds: str,
    pid_one: bool = False,
    extra_env: dict[str, str] | None = None,
) -> Stopped:
    """Run the tool on the five images (one worker, one CPU); once the first is published and
    the second has started decoding, send SIGTERM."""
    out = tmp_path / "out"
    out.mkdir()
    argv = [
        TOOL,
        "-config-images-source-uri",
        sources.as_uri(),
        "-config-derivatives-cache-uri",
        out.as_uri(),
        "-report",
        "-workers",
        "1",
        "-stop-seconds",
        stop_seconds,
        *URIS,
    ]
    if pid_one:
        # A new PID namespace: the tool is its PID 1, where a signal without a handler is ignored.
        argv = ["unshare", "--pid", "--fork", "--kill-child", *argv]
    env = {k: v for k, v in os.environ.items() if not k.startswith("IIIF_")}
    env.update(extra_env or {})
    first_cpu = sorted(os.sched_getaffinity(0))[0]
    process = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=lambda: os.sched_setaffinity(0, {first_cpu}),
    )
    assert process.stdout is not None and process.stderr is not None
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_lines, args=(process.stderr, lines), daemon=True).start()
    seen: list[str] = []
    try:
        _wait_for(lines, "processed", URIS[0], seen)
        _wait_for(lines, "started", URIS[1], seen)
        target = _tool_pid(process.pid) if pid_one else process.pid
        os.kill(target, signal.SIGTERM)
        stdout = process.stdout.read()
        status = process.wait(120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert stdout.strip(), "no stdout:\n" + "".join(seen)
    return Stopped(status, json.loads(stdout), out)


def _tool_pid(unshare_pid: int) -> int:
    """The tool's process (PID 1 of the new namespace), a child of ``unshare``."""
    children = Path(f"/proc/{unshare_pid}/task/{unshare_pid}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


def _assert_all_or_nothing(run: Stopped) -> None:
    for uri in URIS:
        files = run.published(uri)
        assert len(files) in (0, FULL_SET), (uri, sorted(files))
        assert (len(files) == FULL_SET) == ("dimensions" in run.results[uri]), uri


def test_sigterm_exits_143(tmp_path: Path, sources: Path) -> None:
    run = _stop_mid_batch(tmp_path, sources, "60")
    assert run.status == 143


def test_sigterm_prints_an_entry_for_every_uri(tmp_path: Path, sources: Path) -> None:
    run = _stop_mid_batch(tmp_path, sources, "60")
    assert list(run.results) == URIS


def test_sigterm_lets_the_image_in_progress_finish_within_the_stop_seconds(
    tmp_path: Path, sources: Path
) -> None:
    run = _stop_mid_batch(tmp_path, sources, "60")
    assert ["dimensions" in run.results[uri] for uri in URIS[:2]] == [True, True]
    assert len(run.published(URIS[1])) == FULL_SET


def test_sigterm_takes_no_new_image(tmp_path: Path, sources: Path) -> None:
    run = _stop_mid_batch(tmp_path, sources, "60")
    assert [run.results[uri] for uri in URIS[2:]] == [
        {"origin": uri, "error": ABANDONED} for uri in URIS[2:]
    ]
    assert [run.published(uri) for uri in URIS[2:]] == [set(), set(), set()]


def test_sigterm_abandons_the_image_in_progress_past_the_stop_seconds(
    tmp_path: Path, sources: Path
) -> None:
    run = _stop_mid_batch(tmp_path, sources, "0")
    assert (run.status, run.results[URIS[1]]) == (143, {"origin": URIS[1], "error": ABANDONED})
    assert run.published(URIS[1]) == set()


@pytest.mark.parametrize("stop_seconds", ["0", "60"])
def test_sigterm_never_leaves_a_partial_set(
    tmp_path: Path, sources: Path, stop_seconds: str
) -> None:
    run = _stop_mid_batch(tmp_path, sources, stop_seconds)
    assert "dimensions" in run.results[URIS[0]]
    _assert_all_or_nothing(run)


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="needs root and unshare(1) to run the tool as PID 1 of a new PID namespace",
)
def test_sigterm_is_handled_when_the_tool_is_pid_1(tmp_path: Path, sources: Path) -> None:
    run = _stop_mid_batch(tmp_path, sources, "0", pid_one=True)
    assert (run.status, list(run.results)) == (143, URIS)
    assert run.results[URIS[-1]] == {"origin": URIS[-1], "error": ABANDONED}


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "soon"])
def test_a_bad_stop_seconds_fails_every_uri_naming_it(ws: Workspace, value: str) -> None:
    key = ws.put("a.jpg", gen.jpeg())
    status, results = ws.run([key], args=["-stop-seconds", value])
    assert status == 1
    assert results[key]["error"].startswith("-stop-seconds must be a ")
    assert repr(value) in results[key]["error"]


def test_sigterm_records_the_abandoned_uris_in_the_ledger_as_retryable(
    tmp_path: Path,
    sources: Path,
    ledger_env: tuple[dict[str, str], Any],  # noqa: F811 - the imported fixture
) -> None:
    env, client = ledger_env
    _stop_mid_batch(tmp_path, sources, "0", extra_env=env)
    items = {i["uri"]["S"]: i for i in client.scan(TableName="ledger")["Items"]}
    assert items[URIS[0]]["status"] == {"S": "succeeded"}
    assert [
        (items[uri]["status"]["S"], items[uri]["reason"]["S"], items[uri]["retryable"]["BOOL"])
        for uri in URIS[1:]
    ] == [("failed", ABANDONED, True)] * (len(URIS) - 1)


DOCS = Path(__file__).resolve().parents[2] / "docs" / "iiif-process.md"


def test_the_default_stop_seconds_is_the_documented_one() -> None:
    documented = re.search(r"`-stop-seconds` \(default\s+(\d+)", DOCS.read_text())
    assert documented is not None and float(documented.group(1)) == DEFAULT_STOP_SECONDS


def test_the_publish_grace_is_the_documented_one() -> None:
    documented = re.search(r"a publish already under way then gets (\d+) s more", DOCS.read_text())
    assert documented is not None and float(documented.group(1)) == PUBLISH_GRACE


def test_the_worst_stop_fits_fargates_default_stop_timeout() -> None:
    # Images in progress, a publish under way, then the ledger's last writes: before SIGKILL.
    assert DEFAULT_STOP_SECONDS + PUBLISH_GRACE + LEDGER_FLUSH_SECONDS < 30
