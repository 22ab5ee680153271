"""What every benchmark needs: medians, ratios, processes, free ports, wrk, and the machine's name."""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
RUN_TIMEOUT = 3600  # seconds a measured run gets, unless its bench gives it more


def median(values) -> float:
    """The median of a non-empty sequence."""
    return float(statistics.median(values))


def median_seconds(fn, calls: int, warmup: int) -> float:
    """The median seconds of `calls` calls of `fn`, after `warmup` calls not counted."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return median(samples)


@dataclass
class Target:
    """One line of the Performance table: a figure, its baseline in the same run, and the target."""

    name: str
    figure: str
    baseline: str
    ratio: float | None
    target: str
    passed: bool | None  # None: a figure reported for information, with no target

    def row(self) -> dict:
        """As results.json stores it."""
        status = "info" if self.passed is None else "PASS" if self.passed else "MISS"
        return {**self.__dict__, "status": status}


def targets_table(targets: list[dict]) -> list[str]:
    """The markdown lines of a table of targets (`Target.row()`s)."""

    def ratio(value: float | None) -> str:
        return "" if value is None else f"{value:.3f}" if value < 1 else f"{value:.2f}"  # 0.2502 must not read 0.25

    lines = ["| figure | value | baseline (same run) | ratio | target | status |", "|---|---|---|---|---|---|"]
    for t in targets:
        lines.append(
            f"| {t['name']} | {t['figure']} | {t['baseline']} | {ratio(t['ratio'])} | {t['target']} | {t['status']} |"
        )
    return lines


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(n: int) -> list[int]:
    """`n` distinct ports free now (all held at once while they are found, so none repeats)."""
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def tf_config(ports: list[int], index: int) -> str:
    """TF_CONFIG for worker `index` of a cluster of workers on `ports` of 127.0.0.1 (worker 0 the chief)."""
    workers = [f"127.0.0.1:{p}" for p in ports]
    return json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})


def wait_for_port(port: int, process: subprocess.Popen, seconds: float = 60) -> None:
    """Block until something accepts on 127.0.0.1:port, or fail if `process` died."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}: {process.stderr.read()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {seconds} s")


def start_server(command: list[str], port: int, cpus: str | None = None) -> subprocess.Popen:
    """Start a server process (pinned to `cpus` with taskset when given) and wait for its port."""
    prefix = ["taskset", "-c", cpus] if cpus and shutil.which("taskset") else []
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen(
        prefix + command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO
    )
    wait_for_port(port, process)
    return process


def stop_server(process: subprocess.Popen) -> None:
    """SIGTERM, then wait (kill after 10 s)."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


_WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open(os.getenv("KERASREG_BENCH_BODY"), "rb"); wrk.body = f:read("*a"); f:close()
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %.3f %.6f %.6f %d %d\\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1e6, latency:percentile(99) / 1e6,
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""


def require_wrk() -> str:
    """The wrk binary, or exit with how to install it."""
    path = shutil.which("wrk")
    if path is None:
        sys.exit("benchmarks need wrk, the HTTP load generator: apt-get install wrk (Debian/Ubuntu), brew install wrk")
    return path


def wrk(url: str, body_file: Path, seconds: float, connections: int = 16, cpus: str | None = None) -> dict:
    """requests/s, p50/p99 latency (s) and errors of `seconds` of POSTs of `body_file` to `url`."""
    script = body_file.with_suffix(".lua")
    script.write_text(_WRK_SCRIPT)
    prefix = ["taskset", "-c", cpus] if cpus and shutil.which("taskset") else []
    duration = f"-d{max(1, round(seconds))}s"  # wrk reads whole seconds only: "-d3.0s" is a usage error
    command = [*prefix, require_wrk(), "-t1", f"-c{connections}", duration, "-s", str(script), url]
    out = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, "KERASREG_BENCH_BODY": str(body_file)}, check=True
    ).stdout
    found = re.search(r"RESULT (\S+) (\S+) (\S+) (\d+) (\d+)", out)
    if found is None:
        raise RuntimeError(f"wrk printed no result: {out[-1000:]}")
    rps, p50, p99, errors, non_2xx = found.groups()
    return {
        "requests_per_s": float(rps),
        "p50_s": float(p50),
        "p99_s": float(p99),
        "errors": int(errors) + int(non_2xx),
    }


def machine() -> str:
    """CPU model, cores, OS and Python: the `machine` column of the table."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def run_json(command: list[str], timeout: float = 600) -> tuple[float, str]:
    """Run a command to completion; its wall seconds and stdout (raises with its stderr on failure)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}): {result.stderr[-3000:]}")
    return seconds, result.stdout


def add_data_argument(parser) -> None:
    """--data: the folder of real data (KERASREG_TEST_DATA, else ../shared/data beside the checkout)."""
    default = os.environ.get("KERASREG_TEST_DATA") or str(REPO.parent / "shared" / "data")
    parser.add_argument("--data", type=Path, default=Path(default), help=f"real data folder (default: {default})")


def write_readme_section(begin: str, end: str, section: str, readme: Path | None = None) -> None:
    """Replace the text between the markers `begin` and `end` with `section`, in the README or the site's page
    (docs/) that holds them."""
    if readme is None:
        pages = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
        readme = next((page for page in pages if begin in page.read_text()), pages[0])
    text = readme.read_text()
    if begin not in text or end not in text:
        raise SystemExit(f"{readme.name} has no {begin} ... {end} markers to write the table between.")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(f"{head}{begin}\n{section}\n{end}{tail}")


def require_cifar_sample(data: Path) -> None:
    """Exit with one line unless `data` holds the shared CIFAR-10 sample (the scale and shard sets are built
    from it)."""
    if not (data / "cifar10-sample" / "cifar-10-batches-py" / "test_batch").is_file():
        sys.exit(f"no cifar10-sample/cifar-10-batches-py in {data}; pass --data DIR or set KERASREG_TEST_DATA")


def publish(path: Path, results: dict, section: str, markers: tuple[str, str], no_readme: bool) -> int:
    """Write `results` to `path` (JSON), print `section`, and put it between the page's `markers` unless
    `no_readme`; a script's exit code (0)."""
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(section)
    if not no_readme:
        write_readme_section(*markers, section)
    return 0


def read_json(path: Path) -> dict:
    """A JSON file."""
    return json.loads(Path(path).read_text())


def _high_water_mib(pid: int) -> float | None:
    """The largest resident memory process `pid` has had since its exec (VmHWM), MiB; None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
    return int(found.group(1)) / 1024 if found else None


def tree_high_water_mib(pid: int) -> float:
    """The largest high-water mark (VmHWM, MiB) of `pid` and every process below it: a cluster worker's command
    trains in a child it supervises. 0 once they are gone."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo += [int(child) for child in task.read_text().split()]
            except OSError:
                pass
    return max((_high_water_mib(p) or 0.0 for p in found), default=0.0)


def run_measured(command: list[str], timeout: float = RUN_TIMEOUT) -> tuple[float, str, float]:
    """Run a command to completion; its wall seconds, stdout and peak RSS in MiB (raises with stderr on failure).

    The peak is the process's own high-water mark (VmHWM), read every 10 ms while it
    runs: wait4's ru_maxrss would also count the pages of this process, forked into
    the child before its exec (1,087 MiB for a TensorFlow that takes 642).
    """
    import tempfile as _tempfile

    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    with _tempfile.TemporaryFile("w+") as out, _tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err, text=True, env=env, cwd=REPO)
        deadline, peak = time.monotonic() + timeout, 0.0
        while process.poll() is None:
            peak = max(peak, _high_water_mib(process.pid) or 0.0)
            if time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"{' '.join(command)} ran past {timeout} s")
            time.sleep(0.01)
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}): {err.read()[-3000:]}")
        return seconds, out.read(), peak
