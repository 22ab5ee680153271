"""Prometheus metrics: counted at the data plane and the adapter, written by prometheus-client.

    kerasreg_requests_total{model, version, protocol, status}    every answered request
    kerasreg_request_duration_seconds{model}                     a histogram, from the request's arrival to its answer
    kerasreg_images_total{model, version}                        images inferred
    kerasreg_model_versions_loaded{model}                        versions serving now

`model` and `version` are empty for requests that named no model the server has
(so a client cannot grow the label set with made-up names); `protocol` is the
route's: v1, v2, grpc, classify, page, metrics, openapi, or other (no route); `status`
is the HTTP status, or over gRPC the status code's name (OK, INVALID_ARGUMENT, ...). With several worker processes
each writes its values to files in one folder (prometheus-client's multiprocess
mode: PROMETHEUS_MULTIPROC_DIR, set by `serve http` before prometheus_client is
first imported), and GET /metrics from any worker adds them all up.
"""

from __future__ import annotations

import os
from pathlib import Path

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
# From a sub-millisecond single image to a batch near the 10 s timeout.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The server's metrics, in their own registry (several apps in one process, as in tests, do not clash)."""

    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.multiprocess = bool(os.environ.get(MULTIPROCESS_ENV))
        owner = self.registry
        if self.multiprocess:
            _register_locked_collector(self.registry)
            owner = None  # values go to the folder's files, which the collector reads
        self._requests = Counter(
            "kerasreg_requests",
            "Requests answered, by model, version, protocol and status.",
            ["model", "version", "protocol", "status"],
            registry=owner,
        )
        self._latency = Histogram(
            "kerasreg_request_duration_seconds",
            "Seconds from a request's arrival to its answer, by model.",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=owner,
        )
        self._images = Counter("kerasreg_images", "Images inferred.", ["model", "version"], registry=owner)
        # Each worker reports its own; the lowest over live workers is what every worker serves.
        self._versions = Gauge(
            "kerasreg_model_versions_loaded",
            "Model versions serving now, by model.",
            ["model"],
            registry=owner,
            multiprocess_mode="livemin",
        )
        self._children: dict[tuple, object] = {}  # label lookups cost ~1 us each: keep them

    def request(self, model: str, version: str, protocol: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        key = ("r", model, version, protocol, status)
        counter = self._children.get(key)
        if counter is None:
            counter = self._children[key] = self._requests.labels(model, version, protocol, str(status))
        counter.inc()
        key = ("l", model)
        histogram = self._children.get(key)
        if histogram is None:
            histogram = self._children[key] = self._latency.labels(model)
        histogram.observe(seconds)

    def images(self, model: str, version: int, count: int) -> None:
        """Count `count` images inferred by a model version."""
        key = ("i", model, version)
        counter = self._children.get(key)
        if counter is None:
            counter = self._children[key] = self._images.labels(model, str(version))
        counter.inc(count)

    def versions_loaded(self, counts: dict[str, int]) -> None:
        """Set how many versions of each model serve now (0 for models that no longer do)."""
        for model, count in counts.items():
            self._versions.labels(model).set(count)

    def exposition(self) -> tuple[bytes, str]:
        """The text format a Prometheus server scrapes, and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def process_ended(pid: int) -> None:
    """A worker is gone: drop its live gauges, and fold its counters and histograms into the folder's archive.

    Its counts stay (they counted real requests), but not in files of their own: a
    server whose workers were killed and respawned again and again would otherwise
    grow a file per kill and type, each read at every scrape.
    """
    folder = os.environ.get(MULTIPROCESS_ENV)
    if not folder:
        return
    from prometheus_client.multiprocess import mark_process_dead

    mark_process_dead(pid)
    with _folder_lock(folder, exclusive=True):  # scrapes wait: they never see a count twice, or not at all
        for kind in ("counter", "histogram"):
            dead = Path(folder) / f"{kind}_{pid}.db"
            if dead.is_file():
                _fold_into_archive(dead, Path(folder) / f"{kind}_{ARCHIVE}.db")


ARCHIVE = "archive"  # the name in place of a pid: the counts of the workers that are gone


def _fold_into_archive(dead: Path, archive: Path) -> None:
    """Add every value of `dead` to `archive` (values are sums: counts, bucket counts, totals); remove `dead`."""
    from prometheus_client.mmap_dict import MmapedDict

    values: dict[str, float] = {}
    for path in (archive, dead):
        if path.is_file():
            for key, value, _, _ in MmapedDict.read_all_values_from_file(str(path)):
                values[key] = values.get(key, 0.0) + value
    fresh = archive.with_name(f".{archive.name}.new")
    merged = MmapedDict(str(fresh))
    try:
        for key, value in values.items():
            merged.write_value(key, value, 0.0)
    finally:
        merged.close()
    os.replace(fresh, archive)
    dead.unlink()


def _folder_lock(folder: str, exclusive: bool):
    """A lock on the metrics folder: shared by scrapes, exclusive while dead workers' files are folded."""
    import contextlib
    import fcntl

    @contextlib.contextmanager
    def held():
        with open(Path(folder) / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    return held()


def _register_locked_collector(registry) -> None:
    """Register prometheus-client's collector of the folder's files, reading under the folder's shared lock.

    Defined here, not at import: prometheus-client must be imported only after `serve http`
    has set MULTIPROCESS_ENV.
    """
    from prometheus_client.multiprocess import MultiProcessCollector

    class LockedCollector(MultiProcessCollector):
        def collect(self):
            with _folder_lock(self._path, exclusive=False):
                return list(super().collect())

    LockedCollector(registry)
