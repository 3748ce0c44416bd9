"""Buffer settings: disk options, their checks, and the protocol both buffers share."""

from outputs.elasticsearch.config import ElasticsearchConfig
from shipper.buffer import buffer_directory, build_buffer
from shipper.buffer.config import BufferConfig
from shipper.buffer.disk import DiskBuffer
from shipper.buffer.memory import MemoryBuffer
from shipper.config.loader import parse_config_text
from shipper.errors import ConfigError, StorageError
from shipper.metrics import Metrics
from shipper.sources.tail.config import TailConfig

BASE = """\
state_dir: /tmp/s
sources:
  c: {{type: tail, include: ["/x/*.log"]}}
outputs:
  es:
    type: elasticsearch
    hosts: ["http://127.0.0.1:9200"]
    buffer: {buffer}
"""


def parse_agent_config(text: str, file: str):
    return parse_config_text(text, file=file, source_types={"tail": TailConfig},
                             output_types={"elasticsearch": ElasticsearchConfig})


def problems(buffer: str) -> list[str]:
    try:
        parse_agent_config(BASE.format(buffer=buffer), file="c.yaml")
    except ConfigError as exc:
        return [str(p) for p in exc.problems]
    return []


def test_a_disk_buffer_with_fsync_settings_is_valid():
    cfg = parse_agent_config(BASE.format(
        buffer="{type: disk, fsync: always, fsync_interval_secs: 250ms, total_limit_bytes: 1GiB}"),
        file="c.yaml")
    buf = cfg.outputs["es"].buffer
    assert (buf.type, buf.fsync, buf.fsync_interval_secs, buf.total_limit_bytes) == (
        "disk", "always", 0.25, 1024 ** 3)


def test_fsync_settings_on_a_memory_buffer_are_a_mistake():
    assert problems("{fsync: always}") == [
        "c.yaml:8: outputs.es.buffer.fsync: applies only to type: disk"]


def test_limits_must_be_positive_and_the_retry_cap_not_below_the_first_delay():
    assert problems("{total_limit_bytes: 0}") == [
        "c.yaml:8: outputs.es.buffer.total_limit_bytes: must be greater than 0, got 0"]
    assert problems("{retry_initial_secs: 5, retry_max_secs: 1}") == [
        "c.yaml:8: outputs.es.buffer.retry_max_secs: must not be smaller than "
        "retry_initial_secs"]


def test_an_unknown_fsync_mode_is_refused():
    assert any("fsync" in p and "never" in p for p in problems("{type: disk, fsync: never}"))


def test_the_type_picks_the_implementation(tmp_path):
    assert isinstance(build_buffer("es", BufferConfig(), Metrics(), tmp_path), MemoryBuffer)
    disk = build_buffer("es", BufferConfig(type="disk"), Metrics(), tmp_path)
    assert isinstance(disk, DiskBuffer)
    assert disk.directory == tmp_path / "buffers" / "es"


def test_an_output_name_that_is_not_a_plain_file_name_cannot_name_a_buffer(tmp_path):
    for bad in ("../etc", "a/b", "..", ""):
        try:
            buffer_directory(tmp_path, bad)
        except StorageError as exc:
            assert "buffer directory" in str(exc)
        else:
            raise AssertionError(f"{bad!r} accepted")


def test_the_reference_shows_a_disk_example():
    assert "type: disk" in BufferConfig.__config_examples__
    assert "fsync: interval" in BufferConfig.__config_examples__
