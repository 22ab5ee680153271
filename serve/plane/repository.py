"""Models by name and version: one exported file, or a repository folder laid out NAME/VERSION/model.onnx.

    models/
      mnist/1/model.onnx
      mnist/2/model.onnx      the newest version answers requests that name none
      cifar10/1/model.tflite  a LiteRT file serves too (model.onnx first, when a folder has both)

The layout is TensorFlow Serving's and Triton's. Reading it again is split in two
so that nothing on the event loop waits for a model to load:

- `prepare()` (in a thread) reads the folder, and loads and checks every version
  whose file is new or changed and has stayed the same since the previous read (a
  file still being copied is not read half-way): metadata against graph, then a
  test inference (`Model.self_check`).
- `apply()` (on the event loop) swaps the checked versions in, and takes out the
  versions gone from the folder at two reads in a row. A version taken out stops
  taking requests at once; those in flight finish on it, and the log says when
  the last one has ("drained").

A version that fails its check is not served: the log says why once (again only if
its file changes), its state says why, and every other version serves on. If a
served version's file is replaced by a broken one, the loaded version keeps
serving. One file given alone is version 1 of its model; it is reloaded when it
changes, and kept when it disappears (an export's --overwrite swaps it out for a
moment).
"""

from __future__ import annotations

import logging
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from serve.errors import ModelLoadError, ModelNotFound, NotReady, shown
from serve.limits import DEFAULT_MAX_MODEL_BYTES
from serve.plane.versions import RULE, names_a_number, parse_version
from serve.runtime.model import Model
from shared import contract
from shared.escaping import one_line

log = logging.getLogger("serve.plane.repository")
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")  # a name must fit in a URL path segment
MODEL_FILES = (contract.ONNX, contract.TFLITE)  # what a version folder holds, in order of preference
Signature = tuple[int, int, int]  # the file's (mtime_ns, size, inode): what "changed" means
Key = tuple[str, int]  # (model name, version)


@dataclass(eq=False)
class Served:
    """One loaded version: its model, the file it came from, and the requests using it now."""

    name: str
    version: int
    model: Model
    signature: Signature
    in_flight: int = 0
    retired: bool = False  # taken out: no new requests; gone once in_flight is 0


@dataclass(frozen=True)
class Broken:
    """A version that is not served, and why."""

    signature: Signature
    reason: str


@dataclass
class Changes:
    """What `prepare` found: versions to swap in, versions to take out, versions that failed."""

    loaded: list[Served] = field(default_factory=list)
    removed: list[Key] = field(default_factory=list)
    broken: dict[Key, Broken] = field(default_factory=dict)


class ModelRepository:
    """The models a server answers for, by name and version; see the module docstring.

    Args:
        source: a repository folder (NAME/VERSION/model.onnx), or one model file.
        name: the model's name when `source` is one file (required then).
        on_change: called after each `apply` that changed what is served (for metrics).
    """

    def __init__(
        self,
        source: Path,
        name: str | None = None,
        on_change: Callable[[], None] | None = None,
        max_model_bytes: int = DEFAULT_MAX_MODEL_BYTES,
    ):
        self.source = Path(source)
        self.single = None if self.source.is_dir() else name
        if not self.source.is_dir() and not name:
            raise ValueError("a single model file needs a name")
        self.on_change = on_change
        self.max_model_bytes = max_model_bytes
        self.served: dict[str, dict[int, Served]] = {}  # replaced whole on each change: readers never see half
        self.broken: dict[Key, Broken] = {}
        self._seen: dict[Key, Signature] = {}  # the previous read's files
        self._missing: dict[Key, int] = {}  # reads in a row a served version's file was not there
        self._retiring: list[Served] = []
        self._warned: set[str] = set()  # what was warned of, once each (skipped folders, irregular files)

    # Reading the folder.
    def scan(self) -> dict[Key, tuple[Path, Signature]]:
        """The model files there now, by (name, version); what is not a model is warned of once and passed over."""
        if self.single is not None:
            return dict(self._model_file(self.source, (self.single, 1)))
        found = {}
        for model_dir in _folders(self.source):
            if not NAME_PATTERN.match(model_dir.name):
                self._skip(model_dir, "a model name is letters, digits, '_', '.' and '-'")
                continue
            for version, version_dir in self._versions(model_dir).items():
                for file_name in MODEL_FILES:
                    if (version_dir / file_name).exists():
                        found.update(self._model_file(version_dir / file_name, (model_dir.name, version)))
                        break
        return found

    def _versions(self, model_dir: Path) -> dict[int, Path]:
        """The version folders of a model: canonical names only; two folders that name one number, neither."""
        claims: dict[int, list[Path]] = {}
        for folder in _folders(model_dir):
            number = parse_version(folder.name)
            if number is None:
                number = names_a_number(folder.name)
                if number is None:
                    self._skip(folder, RULE)
                    continue
            claims.setdefault(number, []).append(folder)
        versions = {}
        for number, folders in claims.items():
            if len(folders) > 1:
                names = " and ".join(str(f) for f in folders)
                clash = "%s all name version %d; none is served: rename or remove all but one"
                self._warn_once(f"clash {names}", clash, names, number)
            elif parse_version(folders[0].name) is None:
                self._skip(folders[0], f"{RULE} (this one would be {number})")
            else:
                versions[number] = folders[0]
        return versions

    def _model_file(self, path: Path, key: Key) -> dict[Key, tuple[Path, Signature]]:
        """{key: (path, signature)} for a regular model file; a served version whose file became something else
        (a FIFO, a folder) keeps its loaded copy, said once; anything else, nothing."""
        try:
            info = path.stat()
        except OSError:
            return {}
        if stat.S_ISREG(info.st_mode):
            return {key: (path, (info.st_mtime_ns, info.st_size, info.st_ino))}
        served = self.served.get(key[0], {}).get(key[1])
        keeps = "; the copy loaded before serves on" if served is not None else ""
        self._warn_once(f"irregular {path}", "%s is not a regular file%s", path, keeps)
        return {key: (path, served.signature)} if served is not None else {}

    def prepare(self, initial: bool = False) -> Changes:
        """Read the folder and load what changed (blocking: run it off the event loop); see the module docstring.

        `initial` loads every file at once, without waiting for a second read.
        """
        changes = Changes()
        found = self.scan()
        for key, (path, signature) in sorted(found.items()):
            served = self.served.get(key[0], {}).get(key[1])
            if served is not None and served.signature == signature:
                continue
            broken = self.broken.get(key)
            if broken is not None and broken.signature == signature:
                continue  # said once already
            if not initial and self._seen.get(key) != signature:
                continue  # new or still changing: load it once it has held still for a poll
            try:
                model = Model.load(path, self.max_model_bytes)
                model.self_check()
            except (ModelLoadError, OSError) as e:
                changes.broken[key] = Broken(signature, str(e))
                continue
            changes.loaded.append(Served(key[0], key[1], model, signature))
        if self.single is None:
            for name, versions in self.served.items():
                for version in versions:
                    if (name, version) not in found:
                        changes.removed.append((name, version))
        self._seen = {key: signature for key, (_, signature) in found.items()}
        return changes

    def apply(self, changes: Changes) -> None:
        """Swap in what `prepare` loaded and take out what is gone (on the event loop: never concurrently)."""
        served = {name: dict(versions) for name, versions in self.served.items()}
        for version in changes.loaded:
            replaced = served.setdefault(version.name, {}).get(version.version)
            served[version.name][version.version] = version
            self.broken.pop((version.name, version.version), None)
            self._missing.pop((version.name, version.version), None)
            h, w, c = version.model.info.input_shape
            log.info(
                "%s model %s version %d from %s (%d classes, %dx%dx%d)",
                "reloaded" if replaced else "loaded",
                version.name,
                version.version,
                one_line(str(version.model.path)),
                len(version.model.info.classes),
                h,
                w,
                c,
            )
            if replaced is not None:
                self._retire(replaced)
        for key, broken in changes.broken.items():
            self.broken[key] = broken
            keeps = " (the loaded copy serves on)" if key[1] in served.get(key[0], {}) else ""
            log.error("model %s version %d is not served%s: %s", key[0], key[1], keeps, one_line(broken.reason))
        for name, version in changes.removed:
            self._missing[(name, version)] = self._missing.get((name, version), 0) + 1
            if self._missing[(name, version)] < 2:
                continue  # gone at one read only: an atomic swap of the folder may be under way
            del self._missing[(name, version)]
            gone = served[name].pop(version)
            if not served[name]:
                del served[name]
            log.info("model %s version %d removed from %s", name, version, self.source)
            self._retire(gone)
        for key in [k for k in self._missing if k[1] in served.get(k[0], {}) and k not in changes.removed]:
            del self._missing[key]  # back before its second miss
        for key in [k for k in self.broken if k not in self._seen]:
            del self.broken[key]  # a broken file that is gone is no longer news
        changed = served != self.served
        self.served = served
        if changed and self.on_change is not None:
            self.on_change()

    def _retire(self, version: Served) -> None:
        version.retired = True
        if version.in_flight:
            self._retiring.append(version)
        else:
            log.info("model %s version %d drained", version.name, version.version)

    def _skip(self, path: Path, why: str) -> None:
        self._warn_once(f"skip {path}", "ignoring %s: %s (expected NAME/VERSION/%s)", path, why, contract.ONNX)

    def _warn_once(self, key: str, message: str, *args) -> None:
        """Log a warning the first time `key` comes up; folder names are escaped (a name may hold a newline)."""
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message, *(one_line(str(a)) if isinstance(a, str | Path) else a for a in args))

    # Answering requests.
    def find(self, name: str, version: int | None = None) -> Served:
        """The version to answer with (the newest when None), not held; ModelNotFound or NotReady saying why not."""
        versions = self.served.get(name)
        if not versions:
            self.not_served(name)
        if version is None:
            return versions[max(versions)]
        if version in versions:
            return versions[version]
        listed = ", ".join(str(v) for v in sorted(versions))
        raise ModelNotFound(f"model {shown(name)} has no version {version}; it has: {listed}.")

    def acquire(self, name: str, version: int | None = None) -> Served:
        """As `find`, counted in flight until `release`."""
        chosen = self.find(name, version)
        chosen.in_flight += 1
        return chosen

    def release(self, version: Served) -> None:
        """A request on `version` has been answered; a retired version with none left is dropped."""
        version.in_flight -= 1
        if version.retired and version.in_flight == 0 and version in self._retiring:
            self._retiring.remove(version)
            log.info("model %s version %d drained", version.name, version.version)

    def not_served(self, name: str):
        """Raise why `name` cannot answer: NotReady with the reason its versions fail, else ModelNotFound."""
        failures = [b.reason for (n, _), b in sorted(self.broken.items()) if n == name]
        if failures:
            raise NotReady(f"model {shown(name)} has no version that loads: {failures[-1]}")
        names = ", ".join(sorted(self.served)) or "none"
        raise ModelNotFound(f"model {shown(name)} not found; this server has: {names}.")

    def names(self) -> list[str]:
        """The models with a version served now."""
        return sorted(self.served)

    def versions(self, name: str) -> list[int]:
        """The served versions of `name`, newest first (empty when there are none)."""
        return sorted(self.served.get(name, {}), reverse=True)

    def states(self, name: str) -> list[dict]:
        """Every version of `name` the server knows, newest first: AVAILABLE, UNLOADING (draining) or FAILED."""
        states = {v: {"version": v, "state": "AVAILABLE", "reason": ""} for v in self.served.get(name, {})}
        for version in self._retiring:
            if version.name == name and version.version not in states:
                states[version.version] = {"version": version.version, "state": "UNLOADING", "reason": ""}
        for (n, v), broken in self.broken.items():
            if n == name and v not in states:
                states[v] = {"version": v, "state": "FAILED", "reason": broken.reason}
        if not states:
            self.not_served(name)
        return [states[v] for v in sorted(states, reverse=True)]

    def ready(self) -> bool:
        """Whether some model is served (each served model has a good version: one never leaves unreplaced)."""
        return bool(self.served)


def _folders(path: Path) -> list[Path]:
    try:
        return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []
