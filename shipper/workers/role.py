"""Who a worker process is, and the configuration it runs with.

The supervisor starts each worker as the same program (``shipper run -c <file>``) with
``SHIPPER_WORKER=<index>/<count>`` in its environment; nothing else differs, so a worker
reads and validates the same file the supervisor did. From that a worker derives its own
view of the config (``worker_config``):

* ``state_dir`` becomes ``<state_dir>/worker-<index>``: checkpoints, disk buffers and dead
  letters are never shared between processes;
* telemetry listens on a free loopback port (the supervisor owns the configured address and
  asks each worker), which the worker reports in ``telemetry.json`` in its state directory;
* sources other than ``tail`` (a forward port can be bound once) run in worker 0 only.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import orjson

from shipper.config.model import AgentConfig
from shipper.errors import ConfigError, ConfigProblem
from shipper.sources.tail.config import TailConfig
from shipper.workers.shard import PathShard

ENV = "SHIPPER_WORKER"
LOOPBACK = "127.0.0.1"
PORT_FILE = "telemetry.json"


@dataclass(frozen=True)
class WorkerRole:
    """Index and count of one worker process."""

    index: int
    count: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WorkerRole | None:
        """The role the supervisor gave this process; None when it was not started by one."""
        env = os.environ if environ is None else environ
        value = env.get(ENV)
        if not value:
            return None
        index_text, sep, count_text = value.partition("/")
        if not (sep and index_text.isdigit() and count_text.isdigit()
                and int(index_text) < int(count_text)):
            raise ConfigError([ConfigProblem(ENV, None, ENV,
                                             f"expected <index>/<count>, got {value!r}")])
        return cls(int(index_text), int(count_text))

    @property
    def env_value(self) -> str:
        return f"{self.index}/{self.count}"

    def shard(self) -> PathShard:
        return PathShard(self.index, self.count)


def worker_state_dir(state_dir: str | Path, index: int) -> Path:
    """Where worker ``index`` keeps everything it persists."""
    return Path(state_dir) / f"worker-{index}"


def port_file(state_dir: str | Path, index: int) -> Path:
    return worker_state_dir(state_dir, index) / PORT_FILE


def worker_config(config: AgentConfig, role: WorkerRole) -> AgentConfig:
    """``config`` as worker ``role`` runs it (see the module docstring)."""
    sources = {name: cfg for name, cfg in config.sources.items()
               if role.index == 0 or isinstance(cfg, TailConfig)}
    tap = dataclasses.replace(config.telemetry.tap, listen="")  # one port per worker
    telemetry = dataclasses.replace(config.telemetry, listen=f"{LOOPBACK}:0", tap=tap)
    return dataclasses.replace(config, sources=sources, telemetry=telemetry,
                               state_dir=str(worker_state_dir(config.state_dir, role.index)))


def write_port_file(path: Path, port: int) -> None:
    """Tell the supervisor where this worker's telemetry listens (atomic replace)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(orjson.dumps({"pid": os.getpid(), "port": port}))
    os.replace(tmp, path)


def read_port_file(path: Path, pid: int) -> int | None:
    """The port worker process ``pid`` reported; None when it has not (yet) reported, or the
    file is a previous process's."""
    try:
        doc = orjson.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("pid") != pid:
        return None
    port = doc.get("port")
    return port if isinstance(port, int) and 0 < port < 65536 else None
