"""``make bench``, publishing: one 24 MP image's whole set to the embedded S3, pooled vs serial.

The set is what ``iiif-process`` publishes for the image with deep zoom on: go-iiif's 9 default
derivatives, the Level 0 tiles, sizes and full image (512-pixel tiles, Image API 3),
``info.json``, ``manifest.json`` and the report. It is rendered once, in memory, by the pipeline
itself (``process_uri`` into a memory store); then only the publishing is timed: the pipeline's
``publish()`` (phases in order: images, then the documents, then the report) with its bounded
pool of 16 writes at a time, beside one PUT at a time, each run under a fresh prefix of one
bucket. S3 is moto's server in a process of its own on localhost (the embedded AWS, whose
latency is its own request handling, far below real S3's tens of milliseconds: the pool's gain
against real S3 is larger). Target: pooled at least 4x faster than serial (issue #11).

CPU seconds are printed beside: moto's server handles every request in one Python process (a few
ms of CPU per PUT), so the pooled time cannot go below its CPU seconds, and on a machine whose
CPUs are busy the pool is bound by the CPU it gets rather than by latency.

Usage alone: ``python -m bench.publish [--reps N] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.images import ensure_images

TARGET_SPEEDUP = 4.0
POOLED = 16  # the pipeline's default with tiles on (iiif_process.publish.DEFAULT_CONCURRENCY)
BUCKET = "bench-publish"
REGION = "us-east-1"
KEY = "photo-24mp.jpg"


@dataclass(frozen=True)
class Figures:
    """Best seconds of each way of publishing the same objects."""

    objects: int
    bytes: int
    pooled: int
    pooled_seconds: float
    serial_seconds: float
    # CPU seconds (client and server processes together) of the best runs: when they approach
    # the wall seconds times the CPUs, the machine's CPUs, not S3's latency, bound the pool.
    pooled_cpu: float = 0.0
    serial_cpu: float = 0.0
    # Of which moto's server (one Python process): the pooled wall time cannot go below it.
    pooled_server_cpu: float = 0.0

    @property
    def speedup(self) -> float:
        """Serial seconds over pooled seconds."""
        return self.serial_seconds / self.pooled_seconds


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of process ``pid`` so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def moto_s3() -> Iterator[tuple[str, int]]:
    """moto's server in a child process (its own interpreter: the client's threads and the
    server's do not share a GIL); yields its endpoint, stops it at the end."""
    port = _free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("moto's server did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}", server.pid
    finally:
        server.terminate()
        server.wait(10)


def _rendered(image: Path) -> list[list[tuple[str, bytes, str, str | None]]]:
    """The image's objects in their publishing phases, rendered by the pipeline into memory:
    (key, bytes, Content-Type, Cache-Control)."""
    from iiif_process.config import Config, DeepZoom, StoreSpec
    from iiif_process.defaults import default_instructions
    from iiif_process.params import parse_instructions
    from iiif_process.process import ReportOptions, process_uri
    from iiif_process.stores import MemoryStore

    source, out = MemoryStore("bench-source"), MemoryStore("bench-out")
    source.write(KEY, image.read_bytes(), "image/jpeg")
    config = Config(
        source=StoreSpec("memory"),
        derivatives=StoreSpec("memory"),
        deep_zoom=DeepZoom(tiles=True, public_base_url="https://d111111abcdef8.cloudfront.net"),
    )
    process_uri(
        KEY,
        config,
        parse_instructions(default_instructions()),
        source,
        out,
        ReportOptions(enabled=True, name_template="process.json"),
    )
    phases: list[list[tuple[str, bytes, str, str | None]]] = [[], [], []]
    for key, data in out.objects.items():
        content_type, cache_control = out.headers[key]
        name = key.rsplit("/", 1)[-1]
        phase = 2 if name == "process.json" else 1 if name.endswith(".json") else 0
        phases[phase].append((key, data, content_type, cache_control))
    return phases


def measure_publish(out: Path, reps: int = 3) -> Figures:
    """Publish the 24 MP image's set ``reps`` times each way; the best of each."""
    import boto3
    from botocore.config import Config as BotoConfig
    from iiif_process.publish import Item, publish
    from iiif_process.stores import S3Store

    (image,) = ensure_images(out / "images", {"24mp"})
    phases = _rendered(image.path)
    best = {POOLED: float("inf"), 1: float("inf")}
    cpu = {POOLED: 0.0, 1: 0.0}
    server_cpu = {POOLED: 0.0, 1: 0.0}
    with moto_s3() as (endpoint, server):
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
            config=BotoConfig(retries={"mode": "standard"}, max_pool_connections=32),
        )
        client.create_bucket(Bucket=BUCKET)
        for rep in range(reps):
            for concurrency in (POOLED, 1):  # interleaved, so drift hits both alike
                store = S3Store(BUCKET, f"run-{rep}-{concurrency}/", REGION, client)
                items = [[Item(store, *entry) for entry in phase] for phase in phases]
                own, served = _own_cpu(), _cpu_seconds(server)
                started = time.perf_counter()
                publish(KEY, items, concurrency)
                seconds = time.perf_counter() - started
                if seconds < best[concurrency]:
                    best[concurrency] = seconds
                    server_cpu[concurrency] = _cpu_seconds(server) - served
                    cpu[concurrency] = _own_cpu() - own + server_cpu[concurrency]
    flat = [entry for phase in phases for entry in phase]
    return Figures(
        objects=len(flat),
        bytes=sum(len(entry[1]) for entry in flat),
        pooled=POOLED,
        pooled_seconds=best[POOLED],
        serial_seconds=best[1],
        pooled_cpu=cpu[POOLED],
        serial_cpu=cpu[1],
        pooled_server_cpu=server_cpu[POOLED],
    )


def render_publish(figures: Figures | None, note: str = "") -> list[str]:
    """The publishing lines of the report."""
    lines = ["", "publishing one 24 MP image's set (derivatives, tiles, manifest) to embedded S3:"]
    if figures is None:
        return [*lines, f"  not measured: {note}"]
    ok = figures.speedup >= TARGET_SPEEDUP
    return [
        *lines,
        f"  {figures.objects} objects, {figures.bytes / 1e6:.1f} MB "
        f"({os.cpu_count()} CPUs; best of runs)",
        f"  {f'bounded pool, {figures.pooled} writes at a time':<40}"
        f"{figures.pooled_seconds:>8.3f} s  (cpu {figures.pooled_cpu:.2f} s, client + server:"
        f" {figures.pooled_cpu / figures.pooled_seconds:.1f} CPUs busy; moto's server alone "
        f"{figures.pooled_server_cpu:.2f} s)",
        f"  {'one PUT at a time':<40}{figures.serial_seconds:>8.3f} s  "
        f"(cpu {figures.serial_cpu:.2f} s)",
        f"  {f'speed-up (target >= {TARGET_SPEEDUP:g}x)':<40}{figures.speedup:>7.2f}x"
        f"   {'PASS' if ok else 'MISS'}",
    ]


def report(out: Path, reps: int = 3) -> str:
    """Measure and return the report's lines as text (a failure to measure is a line too)."""
    try:
        figures, note = measure_publish(out, max(1, reps)), ""
    except (RuntimeError, OSError) as exc:
        figures, note = None, str(exc)
    return "\n".join(render_publish(figures, note)).lstrip("\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Measure and print; exits 0 whatever the figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.publish", description=__doc__)
    parser.add_argument("--reps", type=int, default=3, help="runs each way (default 3)")
    parser.add_argument("--out", type=Path, default=Path("bench-output"), help="work directory")
    args = parser.parse_args(argv)
    print(report(args.out, args.reps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
