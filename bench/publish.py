"""``make bench``, publishing: one 24 MP image's whole set to the embedded S3, pooled vs serial.

The set is what ``iiif-process`` publishes for the image with deep zoom on: go-iiif's 9 default
derivatives, the Level 0 tiles, sizes and full image (512-pixel tiles, Image API 3),
``info.json``, ``manifest.json`` and the report. It is rendered once, in memory, by the pipeline
itself (``process_uri`` into a memory store); then only the publishing is timed: the pipeline's
``publish()`` (phases in order: images, then the documents, then the report) with its bounded
pool of 16 writes at a time, beside one PUT at a time, each run under a fresh prefix of one
bucket, interleaved. Target: pooled at least 4x faster than serial (issue #11).

S3 is moto's server app (what ``moto_server`` runs: werkzeug, a thread per request) in a process
of its own on localhost, measured two ways, both printed:

- **raw**: moto as it is. Its latency is its own request handling, a few ms of Python CPU per
  PUT, on the same CPUs as the client: the pool can only overlap what the machine's CPUs allow,
  so on 2 busy CPUs this measures the emulator's CPU, not the latency the pool exists to hide.
- **simulated S3 latency**: the same server, each request held ``--s3-latency-ms`` (default 20)
  before moto handles it, by a sleep (no CPU). 20 ms is the low end of what AWS documents for
  S3 Standard: small requests (under 512 KB) have "median latencies ... often in the range of
  tens of milliseconds" (AWS whitepaper *Best Practices Design Patterns: Optimizing Amazon S3
  Performance*, "Timeouts and Retries for Latency-Sensitive Applications",
  https://docs.aws.amazon.com/whitepapers/latest/s3-optimizing-performance-best-practices/timeouts-and-retries-for-latency-sensitive-applications.html),
  and S3 Express One Zone's "single-digit millisecond first-byte read and write request
  latencies" are "up to 10x faster than S3 Standard" (Amazon S3 User Guide, "Optimizing S3
  Express One Zone performance"). The added latency is simulated and printed as such; the
  emulator's CPU is still spent on every request.

CPU seconds are printed beside each time: the client's and moto's server's together, and the
server's alone; the pooled time cannot go below what they take of the machine's CPUs.

Usage alone: ``python -m bench.publish [--reps N] [--s3-latency-ms MS] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.images import ensure_images

TARGET_SPEEDUP = 4.0
# Simulated S3 request latency (ms), the low end of S3 Standard's small-request median (above).
S3_LATENCY_MS = 20.0
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
    # Simulated latency the server added to every request (0: moto as it is).
    latency_ms: float = 0.0

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


class Delayed:
    """WSGI middleware: holds every request ``latency_ms`` (sleeping, no CPU; each request has
    its own thread, so held requests overlap as S3's do) before the app handles it."""

    def __init__(self, app: Callable[..., Any], latency_ms: float) -> None:
        self.app = app
        self.delay = latency_ms / 1000

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if self.delay > 0:
            time.sleep(self.delay)
        return self.app(environ, start_response)


def serve(port: int, latency_ms: float) -> None:
    """moto's server as ``moto_server`` runs it (its app on werkzeug, a thread per request),
    every request held ``latency_ms`` first; runs until terminated."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import run_simple

    app = Delayed(DomainDispatcherApplication(create_backend_app), latency_ms)
    run_simple("127.0.0.1", port, app, threaded=True, request_handler=MotoRequestHandler)


@contextmanager
def moto_s3(latency_ms: float = 0.0) -> Iterator[tuple[str, int]]:
    """moto's server in a child process (its own interpreter: the client's threads and the
    server's do not share a GIL), each request held ``latency_ms``; yields its endpoint and
    process id, stops it at the end."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.publish", "serve", str(port), str(latency_ms)],
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


def measure_publish(
    out: Path,
    reps: int = 3,
    latency_ms: float = 0.0,
    phases: list[list[tuple[str, bytes, str, str | None]]] | None = None,
) -> Figures:
    """Publish the 24 MP image's set ``reps`` times each way to moto's server, each request
    held ``latency_ms`` (0: none); the best of each. ``phases``: the set, when already
    rendered."""
    import boto3
    from botocore.config import Config as BotoConfig
    from iiif_process.publish import Item, publish
    from iiif_process.stores import S3Store

    if phases is None:
        (image,) = ensure_images(out / "images", {"24mp"})
        phases = _rendered(image.path)
    best = {POOLED: float("inf"), 1: float("inf")}
    cpu = {POOLED: 0.0, 1: 0.0}
    server_cpu = {POOLED: 0.0, 1: 0.0}
    with moto_s3(latency_ms) as (endpoint, server):
        # As S3Store makes its client (stores.S3Store.client), with the emulator's endpoint.
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
        latency_ms=latency_ms,
    )


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} (1, 5, 15 min)"


def render_publish(
    legs: Sequence[Figures], note: str = "", loads: tuple[str, str] | None = None
) -> list[str]:
    """The publishing lines of the report: one block per way the embedded S3 ran."""
    lines = ["", "publishing one 24 MP image's set (derivatives, tiles, manifest) to embedded S3:"]
    if not legs:
        return [*lines, f"  not measured: {note}"]
    first = legs[0]
    lines.append(
        f"  {first.objects} objects, {first.bytes / 1e6:.1f} MB ({os.cpu_count()} CPUs; best "
        "of runs, pooled and serial interleaved)"
    )
    for figures in legs:
        ok = figures.speedup >= TARGET_SPEEDUP
        per_put = 1000 * figures.pooled_server_cpu / max(1, figures.objects)
        if figures.latency_ms:
            lines.append(
                f"  SIMULATED S3 latency: moto's server, every request held "
                f"{figures.latency_ms:g} ms (a sleep) before it is handled"
            )
        else:
            lines.append(
                "  raw: moto's server as it is (no added latency; bound by the emulator's CPU, "
                f"{per_put:.1f} ms of it per PUT)"
            )
        lines += [
            f"    {f'bounded pool, {figures.pooled} writes at a time':<40}"
            f"{figures.pooled_seconds:>8.3f} s  (cpu {figures.pooled_cpu:.2f} s, client + "
            f"server: {figures.pooled_cpu / figures.pooled_seconds:.1f} CPUs busy; moto's "
            f"server alone {figures.pooled_server_cpu:.2f} s)",
            f"    {'one PUT at a time':<40}{figures.serial_seconds:>8.3f} s  "
            f"(cpu {figures.serial_cpu:.2f} s)",
            f"    {f'speed-up (target >= {TARGET_SPEEDUP:g}x)':<40}{figures.speedup:>7.2f}x"
            f"   {'PASS' if ok else 'MISS'}"
            + ("  (with simulated latency)" if figures.latency_ms else ""),
        ]
    if any(f.latency_ms for f in legs):
        lines.append(
            "  (the simulated latency is the low end of S3 Standard's small-request median, "
            '"tens of milliseconds": AWS, Optimizing Amazon S3 Performance, "Timeouts and '
            'Retries for Latency-Sensitive Applications"; see bench/publish.py)'
        )
    if note:
        lines.append(f"  {note}")
    if loads is not None:
        lines.append(f"  load average before: {loads[0]}; after: {loads[1]}")
    return lines


def report(out: Path, reps: int = 3, latency_ms: float = S3_LATENCY_MS) -> str:
    """Measure (raw, then with ``latency_ms`` of simulated latency unless 0) and return the
    report's lines as text (a failure to measure is a line too)."""
    legs: list[Figures] = []
    note = ""
    before = _load()
    try:
        (image,) = ensure_images(out / "images", {"24mp"})
        phases = _rendered(image.path)
        for latency in (0.0, latency_ms) if latency_ms > 0 else (0.0,):
            legs.append(measure_publish(out, max(1, reps), latency, phases))
    except (RuntimeError, OSError) as exc:
        note = f"not measured: {exc}" if legs else str(exc)
    return "\n".join(render_publish(legs, note, (before, _load()))).lstrip("\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Measure and print (exits 0 whatever the figures); ``serve PORT LATENCY_MS`` runs the
    server child."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"]:
        serve(int(argv[1]), float(argv[2]))
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.publish", description=__doc__)
    parser.add_argument("--reps", type=int, default=3, help="runs each way (default 3)")
    parser.add_argument(
        "--s3-latency-ms",
        type=float,
        default=S3_LATENCY_MS,
        help=f"simulated S3 latency per request, printed as such (default {S3_LATENCY_MS:g}; "
        "0: only the raw emulator)",
    )
    parser.add_argument("--out", type=Path, default=Path("bench-output"), help="work directory")
    args = parser.parse_args(argv)
    print(report(args.out, args.reps, args.s3_latency_ms))
    return 0


if __name__ == "__main__":
    sys.exit(main())
