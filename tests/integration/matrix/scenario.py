"""The pieces of one matrix cell: what is written, how the agent runs, and the exact oracle.

* :class:`LogFiles` writes sequence-numbered container log lines (CRI and Docker json-file),
  with CRI ``P``+``F`` split messages, Docker messages longer than 16 KiB split the way
  json-file splits them, and (every :data:`REJECT_EVERY` th message) lines the fault proxy
  refuses with 400. It remembers every complete message it wrote, so the oracle knows the
  exact text each document must carry.
* :class:`ForwardClient` is an at-least-once Forward protocol client (raw msgpack): it sends
  chunks with a ``chunk`` option (Forward, PackedForward and gzip CompressedPackedForward in
  turn; each request larger than the source's ``max_batch_records``, so one request is
  several batches and one ack), keeps a window of them unacknowledged, and after a timeout
  or a lost connection reconnects and resends every chunk not acknowledged yet. Records carry
  ``_shipper_id``, so a resent record is indexed under the same ``_id``.
* :class:`Agent` runs ``python -m shipper.cli run`` as a real process on one state directory.
* :func:`check_exactly_once` reads the whole index and the dead-letter store back.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import msgpack

from shipper.demo.embedded_es import free_loopback_port, wait_for_http
from shipper.demo.esquery import SearchClient, SearchError
from tests.integration.matrix.bulkproxy import REJECT

#: Every record is timed on this day, so one daily index holds the whole run.
DAY = "2026.11.22"
BASE_SECS = 1_795_305_600  # 2026-11-22T00:00:00Z
REJECT_EVERY = 37
SPLIT_EVERY = 50
_MARK = re.compile(r"seq=([a-z0-9]+):(\d+)\b")

CONFIG = """\
state_dir: {state}
sources:
{source}
outputs:
  es:
    type: elasticsearch
    hosts: ["{url}"]
    logstash_prefix: {prefix}
    logstash_dateformat: "{dateformat}"
    template_name: {prefix}
    request_timeout_secs: 2
    buffer: {{type: {buffer},{fsync}
              chunk_limit_bytes: {chunk}, chunk_limit_records: 500,
              total_limit_bytes: {limit}, when_full: block, flush_interval_secs: 0.2,
              retry_initial_secs: 0.05, retry_max_secs: 0.5}}
telemetry: {{listen: "127.0.0.1:{port}"}}
shutdown_deadline_secs: {deadline}
"""
TAIL = """\
  containers:
    type: tail
    include: ["{logs}/*.log"]
    read_from_head: true
    refresh_interval_secs: 0.5
    checkpoint_interval_secs: 0.2
    rotate_wait_secs: 1
    partial_flush_secs: 60
"""
FORWARD = """\
  fwd:
    type: forward
    listen: "127.0.0.1:{fport}"
    idle_timeout_secs: 60
    max_batch_records: 100
"""


def ts(n: int) -> str:
    """The runtime timestamp of message ``n`` (all on :data:`DAY`, nanoseconds apart)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(BASE_SECS + n // 1000)) + \
        f".{n % 1000:09d}Z"


def message(name: str, n: int, long: bool = False) -> str:
    """The complete text of message ``n`` of file/stream ``name``."""
    text = f"seq={name}:{n} payload {n * 7919 % 100003}"
    if n % REJECT_EVERY == 5:
        text += " " + REJECT.decode()
    if long:
        text += " " + "".join(chr(97 + (n + i) % 26) for i in range(40_000)) + " end"
    return text


@dataclass
class LogFile:
    """One container log file (CRI or Docker format) and what was written to it."""

    path: Path
    name: str
    fmt: str
    next_n: int = 0
    open_partial: bytes = b""  # the head of a split message written, its tail not yet

    def lines_for(self, n: int) -> tuple[str, list[bytes]]:
        """Message ``n`` and the physical lines that carry it (split when it is long)."""
        long = n % SPLIT_EVERY == SPLIT_EVERY - 1
        text = message(self.name, n, long)
        stream = "stdout" if n % 3 else "stderr"
        if self.fmt == "cri":
            if not long:
                return text, [f"{ts(n)} {stream} F {text}\n".encode()]
            cut = [text[i:i + 16384] for i in range(0, len(text), 16384)]
            tags = ["P"] * (len(cut) - 1) + ["F"]
            return text, [f"{ts(n)} {stream} {t} {c}\n".encode() for t, c in zip(tags, cut,
                                                                               strict=True)]
        full = text + "\n"
        pieces = [full[i:i + 16384] for i in range(0, len(full), 16384)]
        return text, [json.dumps({"log": p, "stream": stream, "time": ts(n)}).encode() + b"\n"
                      for p in pieces]


class LogFiles:
    """Two containers' log files: one CRI, one Docker json-file."""

    def __init__(self, logs: Path) -> None:
        logs.mkdir(parents=True, exist_ok=True)
        self.dir = logs
        self.files = [
            LogFile(logs / f"web-0_default_cri-{'c' * 64}.log", "cri", "cri"),
            LogFile(logs / f"web-1_default_dkr-{'d' * 64}.log", "dkr", "docker"),
        ]
        #: marker → the exact text its document must carry.
        self.expected: dict[str, str] = {}

    def write(self, per_file: int, hold_last_piece: bool = False) -> None:
        """Append ``per_file`` messages to each file. With ``hold_last_piece`` the last one
        written is a split message whose final piece is kept back (see :meth:`finish`)."""
        for f in self.files:
            out: list[bytes] = []
            if f.open_partial:
                out.append(f.open_partial)
                f.open_partial = b""
            for _ in range(per_file):
                n = f.next_n
                f.next_n += 1
                text, lines = f.lines_for(n)
                self.expected[f"{f.name}:{n}"] = text
                out.extend(lines)
            if hold_last_piece:
                n = f.next_n - (f.next_n % SPLIT_EVERY) + SPLIT_EVERY - 1
                while f.next_n <= n:
                    text, lines = f.lines_for(f.next_n)
                    self.expected[f"{f.name}:{f.next_n}"] = text
                    f.next_n += 1
                    out.extend(lines)
                *head, f.open_partial = out
                out = head
            with open(f.path, "ab") as fh:
                fh.write(b"".join(out))

    def rotate(self) -> None:
        """logrotate-style: ``x.log`` → ``x.log.<k>``, a new empty ``x.log``."""
        for f in self.files:
            k = 1 + sum(1 for _ in self.dir.glob(f.path.name + ".*"))
            f.path.rename(f.path.with_name(f"{f.path.name}.{k}"))
            f.path.touch()

    def finish(self) -> None:
        """Write the held-back final pieces of split messages."""
        for f in self.files:
            if f.open_partial:
                with open(f.path, "ab") as fh:
                    fh.write(f.open_partial)
                f.open_partial = b""


class ForwardClient:
    """An acking Forward client in a thread: resends every chunk not acknowledged."""

    def __init__(self, port: int, total: int, chunk: int = 250, window: int = 6,
                 ack_timeout: float = 3.0) -> None:
        self.port = port
        self.total = total
        self.chunk = chunk
        self.window = window
        self.ack_timeout = ack_timeout
        self.expected: dict[str, str] = {}
        self.acked: set[str] = set()
        self.sends = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._chunks: dict[str, bytes] = {}
        for start in range(0, total, chunk):
            entries = []
            for n in range(start, min(total, start + chunk)):
                text = message("fw", n)
                self.expected[f"fw:{n}"] = text
                entries.append([BASE_SECS + n // 1000,
                                {"log": text, "stream": "stdout", "_shipper_id": f"fw-{n}"}])
            cid = base64.b64encode(f"chunk-{start:08d}".encode()).decode()
            option: dict[str, object] = {"chunk": cid, "size": len(entries)}
            # The three request modes in turn: Forward, PackedForward, CompressedPackedForward.
            mode = (start // chunk) % 3
            if mode == 0:
                request: list[object] = ["app.fw", entries, option]
            else:
                packed = b"".join(msgpack.packb(e) for e in entries)
                if mode == 2:
                    packed = gzip.compress(packed)
                    option["compressed"] = "gzip"
                request = ["app.fw", packed, option]
            self._chunks[cid] = msgpack.packb(request, use_bin_type=True)
        self._thread = threading.Thread(target=self._run, daemon=True, name="fwclient")

    def start(self) -> ForwardClient:
        self._thread.start()
        return self

    @property
    def done(self) -> bool:
        return len(self.acked) == len(self._chunks)

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def wait_done(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.done:
            if self.error is not None:
                raise AssertionError(f"forward client failed: {self.error!r}")
            assert time.monotonic() < deadline, (
                f"forward client: {len(self.acked)}/{len(self._chunks)} chunks acknowledged")
            time.sleep(0.1)

    def _run(self) -> None:
        try:
            while not self._stop.is_set() and not self.done:
                with contextlib.suppress(OSError, ValueError, msgpack.ExtraData):
                    self._session()
                self._stop.wait(0.1)
        except BaseException as exc:  # reported by wait_done
            self.error = exc

    def _session(self) -> None:
        """One connection: send a window of unacknowledged chunks, read acks, repeat."""
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=1)
        with sock:
            sock.settimeout(self.ack_timeout)
            unpacker = msgpack.Unpacker(raw=False)
            while not self._stop.is_set() and not self.done:
                pending = [c for c in self._chunks if c not in self.acked][:self.window]
                for cid in pending:
                    sock.sendall(self._chunks[cid])
                    self.sends += 1
                waiting = set(pending)
                while waiting:
                    data = sock.recv(65536)  # timeout → OSError → reconnect and resend
                    if not data:
                        raise ConnectionError("closed by the agent")
                    unpacker.feed(data)
                    for answer in unpacker:
                        if isinstance(answer, dict) and answer.get("ack") in waiting:
                            waiting.discard(answer["ack"])
                            self.acked.add(answer["ack"])

    @property
    def resends(self) -> int:
        return self.sends - len(self._chunks)


class Agent:
    """The agent as a real process on one state directory (restarted across runs)."""

    def __init__(self, root: Path, url: str, prefix: str, source: str, buffer: str, *,
                 limit: str = "256KiB", deadline: float = 1,
                 dateformat: str = "%Y.%m.%d", chunk: str = "64KiB") -> None:
        self.root = root
        self.state = root / "state"
        self.logs = root / "logs"
        self.log = root / "agent.log"
        self.port = free_loopback_port()
        self.fport = free_loopback_port()
        while self.fport == self.port:  # two probes can return the same free port
            self.fport = free_loopback_port()
        self.source = source
        self.prefix = prefix
        fsync = " fsync: interval, fsync_interval_secs: 0.1," if buffer == "disk" else ""
        self._fields = dict(state=self.state, url=url, prefix=prefix, buffer=buffer, fsync=fsync,
                            limit=limit, dateformat=dateformat, chunk=chunk, port=self.port)
        self.cfg = root / "shipper.yaml"
        self.write_config(deadline)
        self.proc: subprocess.Popen[bytes] | None = None

    def write_config(self, deadline: float) -> None:
        src = ""
        if self.source in ("tail", "both"):
            src += TAIL.format(logs=self.logs)
        if self.source in ("forward", "both"):
            src += FORWARD.format(fport=self.fport)
        self.cfg.write_text(CONFIG.format(source=src.rstrip("\n"), deadline=deadline,
                                          **self._fields))

    @property
    def buffer_dir(self) -> Path:
        return self.state / "buffers" / "es"

    def start(self, crashpoint: str | None = None) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if k != "SHIPPER_CRASHPOINT"}
        if crashpoint:
            env["SHIPPER_CRASHPOINT"] = crashpoint
        with open(self.log, "ab") as err:
            err.write(f"--- start crashpoint={crashpoint}\n".encode())
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "shipper.cli", "run", "-c", str(self.cfg)],
                stderr=err, stdout=subprocess.DEVNULL, env=env)
        return self.proc

    def wait_healthy(self) -> None:
        assert self.proc is not None
        wait_for_http(f"http://127.0.0.1:{self.port}/healthz", 60, self.proc)

    def metric(self, name: str, label: str = "") -> float:
        """Sum of the samples of ``name`` (label text containing ``label``); -1 if down."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics",
                                        timeout=5) as r:
                text = r.read().decode()
        except OSError:
            return -1.0
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith(name) and label in line)

    def wait_metric(self, name: str, at_least: float, timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while self.metric(name) < at_least:
            assert self.proc.poll() is None, f"agent exited {self.proc.returncode}"
            assert time.monotonic() < deadline, f"{name} < {at_least} after {timeout}s"
            time.sleep(0.1)

    def sigterm(self, timeout: float) -> tuple[int, float]:
        """SIGTERM; the exit status and how long the agent took to exit."""
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"agent still running {timeout}s after SIGTERM") from None
        return code, time.monotonic() - started

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def wait_exit(self, timeout: float) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"agent did not exit within {timeout}s") from None


@dataclass
class Found:
    """What the index and the dead-letter store hold, by marker."""

    indexed: Counter[str] = field(default_factory=Counter)
    wrong_text: list[str] = field(default_factory=list)
    unmarked: int = 0
    dead: Counter[str] = field(default_factory=Counter)


def read_back(es: SearchClient, index: str, expected: dict[str, str], state: Path) -> Found:
    """Every document of ``index`` (paged, bounded) and every dead letter, by marker."""
    found = Found()
    after: list[object] | None = None
    for _ in range(200):
        body: dict[str, object] = {"size": 2000, "_source": ["log"], "sort": [{"_doc": "asc"}]}
        if after is not None:
            body["search_after"] = after
        try:
            if after is None:
                es.refresh(index)
            hits = es.request("POST", f"/{index}/_search", body)["hits"]["hits"]
        except SearchError as exc:
            if exc.status != 404:  # no index: nothing was indexed at all
                raise
            hits = []
        if not hits:
            break
        for hit in hits:
            log = hit["_source"].get("log", "")
            m = _MARK.search(log)
            if not m:
                found.unmarked += 1
                continue
            key = f"{m.group(1)}:{m.group(2)}"
            found.indexed[key] += 1
            if expected.get(key) != log:
                found.wrong_text.append(key)
        after = hits[-1]["sort"]
    else:
        raise AssertionError("index larger than expected")
    for path in sorted((state / "dead-letter").glob("*.ndjson")):
        for line in path.read_bytes().splitlines():
            log = json.loads(line)["record"].get("log", "")
            m = _MARK.search(log)
            found.dead[f"{m.group(1)}:{m.group(2)}" if m else "?"] += 1
    return found


def rejected_markers(expected: dict[str, str]) -> set[str]:
    return {k for k, text in expected.items() if REJECT.decode() in text}


def check_exactly_once(es: SearchClient, index: str, expected: dict[str, str], state: Path,
                       rejected: set[str]) -> None:
    """Every expected message exactly once with its exact text, the rejected ones only in
    the dead-letter store (each of them there), nothing else anywhere."""
    found = read_back(es, index, expected, state)
    want = Counter({k: 1 for k in expected if k not in rejected})
    missing = sorted(set(want) - set(found.indexed))
    duplicated = {k: n for k, n in found.indexed.items() if n > 1}
    extra = sorted(set(found.indexed) - set(want))
    dead_missing = sorted(rejected - set(found.dead))
    dead_extra = sorted(set(found.dead) - rejected)
    summary = (f"expected {sum(want.values())} indexed: {len(missing)} lost "
               f"{missing[:8]}, {sum(n - 1 for n in duplicated.values())} duplicated "
               f"{sorted(duplicated)[:8]}, {len(extra)} unexpected {extra[:8]}, "
               f"{found.unmarked} unmarked, {len(found.wrong_text)} with wrong text "
               f"{found.wrong_text[:8]}; dead letters: {len(dead_missing)} missing "
               f"{dead_missing[:8]}, {len(dead_extra)} unexpected {dead_extra[:8]}")
    assert not (missing or duplicated or extra or found.unmarked or found.wrong_text
                or dead_missing or dead_extra), summary


def wait_indexed(es: SearchClient, index: str, expected: int, agent: Agent,
                 timeout: float) -> int:
    """Poll ``_count`` (every 0.5 s) until ``expected`` documents are there."""
    deadline = time.monotonic() + timeout
    count = 0
    while True:
        try:
            es.refresh(index)
            count = es.count(index)
        except SearchError as exc:
            if exc.status != 404:  # 404 until the index exists
                raise
        if count >= expected:
            return count
        assert agent.proc is not None and agent.proc.poll() is None, (
            f"agent exited ({agent.proc and agent.proc.returncode}) at {count}/{expected}")
        if time.monotonic() > deadline:
            return count
        time.sleep(0.5)
