"""The image as shipped: built from container/ with buildah and run the way a Fargate task runs it.

The image is built on a stand-in for its base (image_build/: debootstrap, no registry here) and
each run is a fresh container of it: PID 1 in its own PID namespace, the image's user (uid 1000),
working directory and environment, plus the variables the task definition sets. Skipped, with the
reason, where buildah, debootstrap or root are absent (`.ci/run` installs the tools).
IIIF_IMAGE_ARCH=arm64 runs the same checks on the arm64 image (qemu-user-static; `make
image-test-arm64`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pyvips

from image_build import host_arch, missing_tools
from image_build.image import build, command_in, inspect, mounted, pid_one, run

REPO = Path(__file__).resolve().parents[2]
SAMPLES = sorted((REPO / "samples").glob("*.jpg"))
ARCH = os.environ.get("IIIF_IMAGE_ARCH") or host_arch()
MISSING = missing_tools(ARCH)
# qemu runs an arm64 image many times slower.
SLOW = 1 if host_arch() == ARCH else 15
# go-iiif v8's default set, baked at /etc/go-iiif/instructions.json.
LABELS = {"o", "k", "b", "c", "dc", "z", "n", "s", "ds"}

pytestmark = pytest.mark.skipif(
    bool(MISSING),
    reason=f"the image is not built here: {', '.join(MISSING)} missing "
    "(.ci/run installs buildah and debootstrap with apt-get, as root)",
)


@dataclass
class Run:
    """One run of the tool in the image: exit status, stdout object, and what it wrote."""

    status: int
    results: dict[str, Any]
    stderr: str
    out: Path

    def files(self, uri: str) -> set[str]:
        """The files written under ``uri``'s derivatives folder, relative to it."""
        base = self.out / uri
        return {str(p.relative_to(base)) for p in base.rglob("*") if p.is_file()}


def _head() -> str:
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture(scope="module")
def head_at_build() -> str:
    """The commit checked out when the image was built (read just before: the tree is shared)."""
    return _head()


@pytest.fixture(scope="module")
def image(head_at_build: str) -> str:
    """The image, built (cached layers make a rebuild quick)."""
    return build(ARCH, log=lambda line: None)


def _folders(tmp: Path, sources: dict[str, Path | pyvips.Image]) -> tuple[Path, Path]:
    """A source folder holding ``sources`` (key -> file or image) and an empty derivatives folder
    uid 1000 can write, as bind mounts for the container."""
    source, out = tmp / "in", tmp / "out"
    for key, data in sources.items():
        (source / key).parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, Path):
            shutil.copyfile(data, source / key)
        else:
            data.write_to_file(str(source / key), Q=90)
    out.mkdir()
    for folder in (source, *source.rglob("*")):
        folder.chmod(0o755 if folder.is_dir() else 0o644)
    os.chown(out, 1000, 1000)
    return source, out


def _photos() -> dict[str, Path]:
    """Eight URIs (each sample photo twice, once in a folder): several images per worker."""
    keys = {f"{p.name}": p for p in SAMPLES}
    keys.update({f"more/{p.stem} copy.jpg": p for p in SAMPLES})
    return keys


def _parse(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    try:
        return json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(
            f"stdout is not JSON (exit {result.returncode}): {result.stdout!r}\n{result.stderr}"
        )


BINDS = {"in": "/data/in", "out": "/data/out"}
# The task definition's environment (docs/contracts.md), here pointing at folders, not buckets.
TASK_ENV = {
    "IIIF_CONFIG_IMAGES_SOURCE_URI": "file:///data/in",
    "IIIF_CONFIG_DERIVATIVES_CACHE_URI": "file:///data/out",
}


def _run_photos(image: str, tmp: Path, argv: list[str], env: dict[str, str]) -> Run:
    source, out = _folders(tmp, _photos())
    result = run(
        image,
        argv,
        env=env,
        binds={str(source): "/data/in", str(out): "/data/out"},
        timeout=300 * SLOW,
    )
    return Run(result.returncode, _parse(result), result.stderr, out)


@pytest.fixture(scope="module")
def seed_form(image: str, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The command the Lambda sends, with two workers, and the task's environment."""
    argv = [
        "/bin/iiif-process",
        "-config",
        "/etc/go-iiif/config.json",
        "-instructions",
        "/etc/go-iiif/instructions.json",
        "-report",
        "-workers",
        "2",
    ]
    for uri in _photos():
        argv += ["-uri", uri]
    return _run_photos(image, tmp_path_factory.mktemp("seed"), argv, TASK_ENV)


@pytest.fixture(scope="module")
def v8_form(image: str, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """go-iiif v8's form: config from the baked folder, stores given as flags."""
    argv = [
        "/bin/iiif-process",
        "-config-source",
        "file:///etc/go-iiif",
        "-instructions-source",
        "file:///etc/go-iiif",
        "-config-images-source-uri",
        "file:///data/in",
        "-config-derivatives-cache-uri",
        "file:///data/out",
        "-report",
        "-workers",
        "2",
        *_photos(),
    ]
    return _run_photos(image, tmp_path_factory.mktemp("v8"), argv, {})


def test_seed_form_with_two_workers_exits_0(seed_form: Run) -> None:
    assert seed_form.status == 0, (seed_form.results, seed_form.stderr[-3000:])


def test_seed_form_prints_a_report_per_uri(seed_form: Run) -> None:
    assert {uri: entry.get("origin") for uri, entry in seed_form.results.items()} == {
        uri: uri for uri in _photos()
    }
    assert not [entry for entry in seed_form.results.values() if "error" in entry]


def test_seed_form_publishes_every_derivative_and_report(seed_form: Run) -> None:
    for uri, entry in seed_form.results.items():
        written = seed_form.files(uri)
        assert {key.removeprefix(f"{uri}/") for key in entry["uris"].values()} | {
            "process.json"
        } == written
        assert set(entry["uris"]) == LABELS


def test_v8_form_with_two_workers_publishes_every_image(v8_form: Run) -> None:
    assert v8_form.status == 0, (v8_form.results, v8_form.stderr[-3000:])
    assert set(v8_form.results) == set(_photos())
    for uri, entry in v8_form.results.items():
        assert set(entry.get("uris", {})) == LABELS, entry
        assert len(v8_form.files(uri)) == len(LABELS) + 1


def test_derivatives_are_written_as_uid_1000(seed_form: Run) -> None:
    owners = {p.stat().st_uid for p in seed_form.out.rglob("*") if p.is_file()}
    assert owners == {1000}


def test_bin_iiif_process_is_pips_console_script(image: str) -> None:
    result = run(
        image, ["/bin/sh", "-c", "readlink /bin/iiif-process && head -n 8 /bin/iiif-process"]
    )
    assert result.returncode == 0, result.stderr
    link, *script = result.stdout.splitlines()
    assert link == "/opt/venv/bin/iiif-process"
    assert script[0] == "#!/opt/venv/bin/python"
    assert "from iiif_process.process_cli import main" in script


PROBE = (
    "import importlib.util as u, json, os, sys; "
    "print(json.dumps({'found': [m for m in ('setuptools', 'pip', 'wheel', 'pkg_resources') "
    "if u.find_spec(m)], 'stdlib_pyc': os.path.exists(u.cache_from_source(json.__file__))}))"
)


@pytest.mark.parametrize("python", ["/opt/venv/bin/python", "/usr/local/bin/python3"])
def test_no_setuptools_pip_or_wheel_is_left(image: str, python: str) -> None:
    result = run(image, [python, "-c", PROBE])
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["found"] == []


def test_standard_library_bytecode_is_compiled(image: str) -> None:
    result = run(image, ["/opt/venv/bin/python", "-c", PROBE])
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["stdlib_pyc"] is True


def test_oci_labels_name_source_revision_and_version(image: str, head_at_build: str) -> None:
    labels = inspect(image).get("Labels") or {}
    assert (
        labels.get("org.opencontainers.image.revision"),
        labels.get("org.opencontainers.image.version"),
        bool(labels.get("org.opencontainers.image.source")),
    ) == (head_at_build, "0.1.0", True)


# --- SIGTERM to PID 1 (docs/contracts.md "iiif-process on SIGTERM") -----------------------------

ABANDONED = "abandoned: stopped by SIGTERM before it finished"
BATCH = 16


@dataclass
class Stopped:
    """A batch stopped by SIGTERM: what PID 1 was, and the run's outcome."""

    namespace_pid: str
    run: Run
    uris: list[str]


def _ns_pid(host_pid: int) -> str:
    """The PIDs of ``host_pid`` from the host's namespace down to its own (``NSpid``)."""
    for line in Path(f"/proc/{host_pid}/status").read_text().splitlines():
        if line.startswith("NSpid:"):
            return line.split(":", 1)[1].split()[-1]
    raise AssertionError("no NSpid")


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def stopped(image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stopped]:
    """16 large photos with two workers, SIGTERM to PID 1 once the first image is published."""
    big = pyvips.Image.new_from_file(str(SAMPLES[0])).resize(8)  # about 4100x4100
    uris = [f"big/{i:02d}.jpg" for i in range(BATCH)]
    source, out = _folders(tmp_path_factory.mktemp("sigterm"), dict.fromkeys(uris, big))
    argv = [
        "/bin/iiif-process",
        "-config",
        "/etc/go-iiif/config.json",
        "-instructions",
        "/etc/go-iiif/instructions.json",
        "-report",
        "-workers",
        "2",
    ]
    for uri in uris:
        argv += ["-uri", uri]
    config = inspect(image)
    with mounted(image) as root:
        command = command_in(
            root, config, argv, env=TASK_ENV, binds={str(source): "/data/in", str(out): "/data/out"}
        )
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            _wait_for(lambda: _children(proc.pid), 10 * SLOW, "the container's first process")
            tool = pid_one(proc.pid)
            _wait_for(lambda: "iiif-process" in _cmdline(tool), 30 * SLOW, "iiif-process to start")
            _wait_for(lambda: any(out.rglob("process.json")), 120 * SLOW, "a first image published")
            namespace_pid = _ns_pid(tool)
            os.kill(tool, signal.SIGTERM)
            stdout, stderr = proc.communicate(timeout=120 * SLOW)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    try:
        results = json.loads(stdout)
    except json.JSONDecodeError:
        results = {"<stdout not JSON>": stdout}
    yield Stopped(namespace_pid, Run(proc.returncode, results, stderr, out), uris)


def _children(pid: int) -> bool:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return path.exists() and bool(path.read_text().split())


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except FileNotFoundError:
        return ""


def test_the_tool_runs_as_pid_1(stopped: Stopped) -> None:
    assert stopped.namespace_pid == "1"


def test_sigterm_to_pid_1_exits_143(stopped: Stopped) -> None:
    assert stopped.run.status == 143, (stopped.run.results, stopped.run.stderr[-3000:])


def test_sigterm_prints_an_entry_for_every_uri(stopped: Stopped) -> None:
    assert set(stopped.run.results) == set(stopped.uris)
    abandoned = [uri for uri, entry in stopped.run.results.items() if "error" in entry]
    assert abandoned, "SIGTERM stopped nothing: the batch finished first"
    assert {stopped.run.results[uri]["error"] for uri in abandoned} == {ABANDONED}


def test_sigterm_publishes_all_or_nothing_of_each_image(stopped: Stopped) -> None:
    published = {uri: len(stopped.run.files(uri)) for uri in stopped.uris}
    expected = {
        uri: 0 if "error" in stopped.run.results.get(uri, {"error": "none"}) else len(LABELS) + 1
        for uri in stopped.uris
    }
    assert published == expected
