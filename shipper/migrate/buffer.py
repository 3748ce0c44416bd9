"""An output's Fluentd buffer (``<buffer>``, or v0.12's flat ``buffer_*`` keys) -> ``buffer:``.

Fluentd v1 still accepts the v0.12 spellings on the output section and translates them
(``buffer_chunk_limit`` -> ``chunk_limit_size``, ``num_threads`` -> ``flush_thread_count``,
``max_retry_wait`` -> ``retry_max_interval``...), so both places are read, ``<buffer>`` first.

Differences that are not one-to-one:

- ``queue_limit_length`` counts chunks; shipper bounds bytes, so the total is
  ``chunk_limit_size x queue_limit_length`` (what Fluentd computes too, with its own default
  chunk size of 8 MiB in memory and 256 MiB on file when none is set).
- shipper never gives up on an outage (``retry_forever``/``disable_retry_limit`` are implied);
  records a server rejects go to the dead-letter store instead of being dropped.
- ``overflow_action drop_oldest_chunk`` has no equivalent (``when_full`` offers ``block`` and
  ``drop_newest``); it becomes ``block``, with a warning.
"""

from __future__ import annotations

from typing import Any

from shipper.buffer.config import BufferConfig
from shipper.config.units import format_bytes
from shipper.migrate.document import Commented
from shipper.migrate.reader import Conversion, SectionReader, fluent_size

MIB = 1024 * 1024
FLUENT_CHUNK_DEFAULT = {"memory": 8 * MIB, "disk": 256 * MIB}
FLUENT_TOTAL_DEFAULT = {"memory": 512 * MIB, "disk": 64 * 1024 * MIB}
_DEFAULTS = BufferConfig()

# Keys that change nothing in shipper, with the reason given in the note.
_UNNEEDED = {
    "flush_mode": "chunks are flushed by size, record count and flush_interval_secs",
    "flush_at_shutdown": "on SIGTERM shipper drains until shutdown_deadline_secs; a disk "
                         "buffer keeps the rest for the next start",
    "retry_type": "retries use exponential backoff with full jitter",
    "retry_randomize": "retries use exponential backoff with full jitter",
    "retry_exponential_backoff_base": "retries use exponential backoff with full jitter",
    "chunk_full_threshold": "a chunk is sent when it is full",
    "flush_thread_interval": "delivery waits on the buffer, it does not poll",
    "flush_thread_burst_interval": "delivery waits on the buffer, it does not poll",
    "try_flush_interval": "delivery waits on the buffer, it does not poll",
    "queued_chunk_flush_interval": "delivery waits on the buffer, it does not poll",
    "delayed_commit_timeout": "acknowledgements are tracked per record",
    "queued_chunks_limit_size": "total_limit_bytes bounds the queue",
    "disable_chunk_backup": "records a server rejects go to the dead-letter store",
    "compress": "buffered chunks are not compressed; the output's gzip compresses requests",
    "path": "disk buffers live under state_dir/buffers/<output name>",
    "buffer_path": "disk buffers live under state_dir/buffers/<output name>",
}
_GIVES_UP = ("retry_timeout", "retry_max_times", "retry_limit")


def convert_buffer(output: SectionReader, conv: Conversion) -> dict[str, Any]:
    """The ``buffer:`` mapping for the output read by ``output`` (empty: shipper defaults)."""
    section = output.section.child("buffer")
    inner = SectionReader(section, conv) if section is not None else None
    readers = [r for r in (inner, output) if r is not None]
    result: dict[str, Any] = {}

    kind = _buffer_type(readers, result)
    chunk = _first(readers, lambda r: r.size("chunk_limit_size", "buffer_chunk_limit"))
    if chunk is not None:
        result["chunk_limit_bytes"] = chunk
    records = _first(readers, lambda r: r.integer("chunk_limit_records"))
    if records is not None:
        result["chunk_limit_records"] = records
    _total(readers, result, kind)
    flush = _first(readers, lambda r: r.seconds("flush_interval",
                                                default=_DEFAULTS.flush_interval_secs))
    if flush is not None:
        result["flush_interval_secs"] = flush
    threads = _first(readers, lambda r: r.integer("flush_thread_count", "num_threads",
                                                  default=_DEFAULTS.max_in_flight))
    if threads is not None:
        result["max_in_flight"] = threads
    wait = _first(readers, lambda r: r.seconds("retry_wait",
                                               default=_DEFAULTS.retry_initial_secs))
    if wait is not None:
        result["retry_initial_secs"] = wait
    cap = _first(readers, lambda r: r.seconds("retry_max_interval", "max_retry_wait",
                                              default=_DEFAULTS.retry_max_secs))
    if cap is not None:
        result["retry_max_secs"] = cap
    _overflow(readers, result)
    _retries(readers)
    _defaults_differ(output, section, result, kind)
    for reader in readers:
        for key, why in _UNNEEDED.items():
            reader.skip((key,), why)
    if section is not None:
        keys = [k.strip() for k in section.arg.assumed().split(",") if k.strip()]
        if [k for k in keys if k != "tag"]:
            output.note(section, f"chunk keys ({', '.join(keys)}): shipper does not split "
                                 "chunks by keys; the index of each record is computed when "
                                 "it is sent")
        if inner is not None:
            inner.finish("shipper's buffer")
    return result


def _first(readers: list[SectionReader], read: Any) -> Any:
    for reader in readers:
        value = read(reader)
        if value is not None:
            return value
    return None


def _buffer_type(readers: list[SectionReader], result: dict[str, Any]) -> str:
    for reader in readers:
        keys = ("@type", "type") if reader.section.name == "buffer" else ("buffer_type",)
        param = reader.param(*keys)
        if param is None:
            continue
        kind = param.value.assumed().strip()
        if param.value.literal is None and kind not in ("file", "file_single", "memory"):
            reader.warn(param, f"{param.key}: the buffer type comes from "
                               f"{', '.join(param.value.env_names) or 'embedded Ruby'}; write "
                               "type: disk (for file) or memory in buffer by hand")
            return "memory"
        if kind in ("file", "file_single"):
            result["type"] = "disk"
            reader.note(param, f"{param.key} {kind}: type: disk; the buffer files live under "
                               "state_dir/buffers/<output name>, and acknowledgements wait "
                               "for their fsync")
            return "disk"
        if kind == "memory":
            result["type"] = "memory"
            return "memory"
        reader.warn(param, f"{param.key} {kind}: unknown buffer type; shipper's memory "
                           "buffer is used")
        return "memory"
    return "memory"


def _defaults_differ(output: SectionReader, section: Any, result: dict[str, Any],
                     kind: str) -> None:
    """A limit Fluentd left at its default is stated when shipper's default differs."""
    where = section if section is not None else output.section
    unset = []
    for ours, defaults, fluent in (("chunk_limit_bytes", FLUENT_CHUNK_DEFAULT,
                                    "chunk_limit_size"),
                                   ("total_limit_bytes", FLUENT_TOTAL_DEFAULT,
                                    "total_limit_size")):
        shipper_default = getattr(_DEFAULTS, ours)
        if ours not in result and defaults[kind] != shipper_default:
            unset.append(f"{fluent} {format_bytes(defaults[kind])} -> {ours} "
                         f"{format_bytes(shipper_default)}")
    if unset:
        name = "file" if kind == "disk" else kind
        output.note(where, f"Fluentd's {name} buffer defaults differ from shipper's: "
                           f"{'; '.join(unset)}; set buffer limits to keep Fluentd's")


def _total(readers: list[SectionReader], result: dict[str, Any], kind: str) -> None:
    total = _first(readers, lambda r: r.size("total_limit_size", "buffer_total_limit"))
    if total is not None:
        result["total_limit_bytes"] = total
        for reader in readers:
            reader.skip(("queue_limit_length", "buffer_queue_limit"),
                        "total_limit_size already bounds the buffer")
        return
    for reader in readers:
        queue = reader.param("queue_limit_length", "buffer_queue_limit")
        if queue is None:
            continue
        chunk_param = next((p for r in readers for k in ("chunk_limit_size", "buffer_chunk_limit")
                            if (p := r.section.params.get(k)) is not None), None)
        chunk_text = chunk_param.value.assumed().strip() if chunk_param is not None else ""
        count = queue.value.assumed().strip()
        chunk = fluent_size(chunk_text) if chunk_text else FLUENT_CHUNK_DEFAULT[kind]
        if not count.isdigit() or chunk is None:
            reader.warn(queue, f"{queue.key} counts chunks and its value is not known here; "
                               "shipper bounds bytes: set buffer.total_limit_bytes by hand")
            return
        origin = f"{chunk_param.key} {chunk_text}" if chunk_param is not None \
            else f"Fluentd's default chunk size {format_bytes(chunk)}"
        result["total_limit_bytes"] = Commented(
            format_bytes(int(count) * chunk), f"{queue.key} {count} x {origin}")
        dynamic = [p for p in (queue, chunk_param) if p is not None and p.value.literal is None]
        if dynamic:
            names = ", ".join(n for p in dynamic for n in p.value.env_names)
            reader.note(queue, f"total_limit_bytes is computed from the defaults of {names}; "
                               "if you set them, set buffer.total_limit_bytes to match")
        return


def _overflow(readers: list[SectionReader], result: dict[str, Any]) -> None:
    for reader in readers:
        param = reader.param("overflow_action", "buffer_queue_full_action")
        if param is None:
            continue
        action = param.value.assumed().strip()
        if action == "block":
            result["when_full"] = "block"
        elif action in ("throw_exception", "exception"):
            result["when_full"] = "block"
            reader.note(param, f"{param.key} {action}: shipper blocks the sources instead "
                               "(they stop reading; nothing is lost)")
        elif action == "drop_oldest_chunk":
            result["when_full"] = "block"
            reader.warn(param, f"{param.key} drop_oldest_chunk has no equivalent; converted "
                               "to when_full: block (sources pause, nothing is lost); "
                               "drop_newest is the dropping alternative")
        else:
            reader.warn(param, f"{param.key}: unknown action {action!r}; when_full is left "
                               "at block")
        return


def _retries(readers: list[SectionReader]) -> None:
    for reader in readers:
        for key in ("retry_forever", "disable_retry_limit"):
            param = reader.param(key)
            if param is not None:
                reader.note(param, f"{key}: shipper always retries until delivered (records "
                                   "a server rejects go to the dead-letter store)")
        for key in _GIVES_UP:
            param = reader.param(key)
            if param is not None:
                reader.note(param, f"{key}: shipper never gives up on an outage, so nothing "
                                   "is dropped after it; rejected records go to the "
                                   "dead-letter store")
