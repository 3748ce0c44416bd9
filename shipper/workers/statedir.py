"""Bringing the state written with one ``workers`` count into the layout of another.

``workers: 1`` keeps everything in ``state_dir`` itself (as before workers existed); with
N > 1 worker ``i`` owns ``state_dir/worker-<i>``. Changing N moves files to other workers
(``shard``), so before any worker starts (``prepare``, by the supervisor, or by the single
process when it finds worker directories) the persisted state is re-partitioned:

* **Checkpoints** of every configured tail source are merged from every directory that has
  them (``state_dir`` and all ``worker-*``) and split by the new shard of each entry's real
  path, so every file resumes from its own position in the worker that now reads it: no
  loss, and no re-reading. Should one identity appear twice, the lower offset wins (read
  again, never skipped); the deterministic ids make a re-read a 409, not a duplicate.
  ``saved_at`` keeps the oldest value, so files that appeared while the agent was down are
  still read.
* **Disk-buffer segments** left in a directory that is no longer used (``state_dir`` itself
  for N > 1, or ``worker-<i>`` with i >= N) hold records whose checkpoints already moved
  past them: they are renamed into the buffer of the same output of worker ``i % N`` with
  fresh sequence numbers, and delivered by it. Quarantined segments stay where they are.
* **Dead letters** stay where they were written; they are files for operators, never read
  back.

Every step is idempotent: a crash midway and the next start finishes the job. The count the
state is laid out for is recorded last, in ``state_dir/workers.json``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

import orjson

from shipper.buffer.disk.recovery import SALVAGE_SUFFIX, SEGMENT_SUFFIX, parse_seq, segment_name
from shipper.config.model import AgentConfig
from shipper.errors import StorageError
from shipper.sources.tail.checkpoints import CheckpointStore
from shipper.sources.tail.config import TailConfig
from shipper.workers.role import worker_state_dir
from shipper.workers.shard import shard_of

log = logging.getLogger(__name__)

MARKER = "workers.json"
POSITIONS = "positions.json"
BUFFERS = "buffers"


def layout(state_dir: Path, count: int) -> list[Path]:
    """The directories holding state with ``count`` workers, by worker index."""
    if count <= 1:
        return [state_dir]
    return [worker_state_dir(state_dir, i) for i in range(count)]


def _worker_dirs(state_dir: Path) -> list[Path]:
    """Every ``worker-<i>`` directory present, by index."""
    found = []
    try:
        names = os.listdir(state_dir)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise StorageError(f"cannot list {state_dir}: {exc}") from exc
    for name in names:
        index = name.removeprefix("worker-")
        if index != name and index.isdigit() and (state_dir / name).is_dir():
            found.append((int(index), state_dir / name))
    return [path for _, path in sorted(found)]


def _old_index(state_dir: Path, directory: Path) -> int:
    return 0 if directory == state_dir else int(directory.name.removeprefix("worker-"))


def _segments(buffer_dir: Path) -> list[Path]:
    """Segments to carry over: ``.seg`` files, and salvages whose original is gone (they
    are complete: recovery would rename them into place)."""
    try:
        names = sorted(os.listdir(buffer_dir))
    except OSError:
        return []
    found = []
    for name in names:
        if parse_seq(name, SEGMENT_SUFFIX) is not None:
            found.append(buffer_dir / name)
        else:
            seq = parse_seq(name, SALVAGE_SUFFIX)
            if seq is not None and not (buffer_dir / segment_name(seq)).exists():
                found.append(buffer_dir / name)
    return found


def _buffer_dirs(directory: Path) -> list[Path]:
    root = directory / BUFFERS
    try:
        return sorted(p for p in root.iterdir() if p.is_dir())
    except OSError:
        return []


def read_marker(state_dir: Path) -> int | None:
    try:
        doc = orjson.loads((state_dir / MARKER).read_bytes())
    except (OSError, ValueError):
        return None
    count = doc.get("workers") if isinstance(doc, dict) else None
    return count if isinstance(count, int) and count >= 1 else None


def _write_marker(state_dir: Path, count: int) -> None:
    path = state_dir / MARKER
    tmp = path.with_name(MARKER + ".tmp")
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(orjson.dumps({"workers": count}))
        os.replace(tmp, path)
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc}") from exc


def prepare_for(config: AgentConfig, count: int) -> bool:
    """``prepare`` for the tail sources of ``config`` in its state directory."""
    tails = [name for name, cfg in config.sources.items() if isinstance(cfg, TailConfig)]
    return prepare(Path(config.state_dir), count, tails)


def prepare(state_dir: Path, count: int, tail_sources: Iterable[str]) -> bool:
    """Re-partition checkpoints and buffers for ``count`` workers; True when anything
    had to move. Run it before any worker starts, never next to a running agent."""
    sources = list(tail_sources)
    target = layout(state_dir, count)
    every = [state_dir, *_worker_dirs(state_dir)]
    stray = [d for d in every if d not in target]
    has_stray = any((d / s / POSITIONS).exists() for d in stray for s in sources) or any(
        _segments(b) for d in stray for b in _buffer_dirs(d))
    previous = read_marker(state_dir)
    if not has_stray and (previous == count or (previous is None and count == 1)):
        return False  # laid out for this count already (or a single agent, as always)
    if any((d / s / POSITIONS).exists() for d in every for s in sources) or has_stray:
        log.info("re-partitioning the state for %d worker(s)", count,
                 extra={"event": "workers_state_repartition", "workers": count,
                        "previous_workers": previous})
    for source in sources:
        _repartition_positions(every, target, source, count)
    for directory in stray:
        new_index = _old_index(state_dir, directory) % count
        for buffer_dir in _buffer_dirs(directory):
            _move_segments(buffer_dir, target[new_index] / BUFFERS / buffer_dir.name)
    _write_marker(state_dir, count)
    return True


def _repartition_positions(every: list[Path], target: list[Path], source: str,
                           count: int) -> None:
    stores = []
    for directory in every:
        if (directory / source / POSITIONS).exists():
            store = CheckpointStore(directory / source)
            store.load()
            stores.append(store)
    if not stores:
        return
    parts = [CheckpointStore(d / source) for d in target]
    saved = [s.saved_at for s in stores if s.saved_at is not None]
    for store in stores:
        for identity, entry in store.entries.items():
            part = parts[shard_of(entry.real_path, count)]
            known = part.entries.get(identity)
            if known is None or entry.offset < known.offset:
                part.put(identity, entry)
        for lineage, handled in store.lineages.items():
            part = parts[shard_of(lineage, count)]
            merged = (part.handled(lineage) or set()) | handled
            part.set_handled(lineage, merged,
                             store.lineage_paths.get(lineage, lineage))
    for part in parts:
        doc = orjson.loads(part.snapshot())
        doc["saved_at"] = min(saved) if saved else None
        part.write(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS))
    kept = {d / source / POSITIONS for d in target}
    for store in stores:
        if store.path not in kept:
            try:
                store.path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise StorageError(f"cannot remove {store.path}: {exc}") from exc


def _move_segments(source_dir: Path, target_dir: Path) -> None:
    segments = _segments(source_dir)
    if not segments:
        return
    try:
        target_dir.mkdir(parents=True, exist_ok=True)
        taken = [parse_seq(n, SEGMENT_SUFFIX) for n in os.listdir(target_dir)]
        taken += [parse_seq(n, SALVAGE_SUFFIX) for n in os.listdir(target_dir)]
        seq = max((s for s in taken if s is not None), default=0) + 1
        for path in segments:
            os.rename(path, target_dir / segment_name(seq))
            seq += 1
        _fsync_dir(target_dir)
        _fsync_dir(source_dir)
    except OSError as exc:
        raise StorageError(f"cannot move the buffer of {source_dir} to {target_dir}: {exc}"
                           ) from exc
    log.info("moved %d buffered segment(s) from %s to %s", len(segments), source_dir,
             target_dir, extra={"event": "workers_buffer_moved", "segments": len(segments)})


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
