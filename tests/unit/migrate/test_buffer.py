"""Buffer settings in both spellings (v1 <buffer>, v0.12 flat keys) become buffer: keys."""

from __future__ import annotations

from tests.unit.migrate.helpers import convert, messages, one, validate

SOURCE = "<source>\n  @type forward\n</source>\n"


def buffer_of(tmp_path, match_body: str):
    migration = convert(tmp_path, SOURCE + f"<match **>\n  @type stdout\n{match_body}</match>\n")
    validate(migration)  # every result must load
    return one(migration, "outputs").get("buffer", {}), migration


def test_v012_spellings_map_to_the_same_settings(tmp_path):
    buffer, migration = buffer_of(tmp_path, """\
  buffer_type file
  buffer_path /var/log/fluentd-buffers/es.buffer
  buffer_chunk_limit 2M
  buffer_queue_limit 8
  flush_interval 5s
  retry_wait 2
  max_retry_wait 30
  disable_retry_limit
  num_threads 2
  buffer_queue_full_action block
""")
    assert buffer == {"type": "disk", "chunk_limit_bytes": "2MiB", "total_limit_bytes": "16MiB",
                      "flush_interval_secs": "5s", "max_in_flight": 2,
                      "retry_initial_secs": "2s", "retry_max_secs": "30s", "when_full": "block"}
    assert "buffer_queue_limit 8 x buffer_chunk_limit 2M" in migration.text
    assert messages(migration) == []


def test_v1_buffer_section(tmp_path):
    buffer, migration = buffer_of(tmp_path, """\
  <buffer>
    @type memory
    chunk_limit_size 8MB
    chunk_limit_records 1000
    total_limit_size 512MB
    flush_interval 1s
    flush_thread_count 4
    retry_max_interval 1m
    retry_forever true
    overflow_action throw_exception
    flush_mode interval
    retry_type exponential_backoff
  </buffer>
""")
    assert buffer == {"type": "memory", "chunk_limit_bytes": "8MiB", "chunk_limit_records": 1000,
                      "total_limit_bytes": "512MiB", "flush_interval_secs": "1s",
                      "max_in_flight": 4, "retry_max_secs": "1m", "when_full": "block"}
    notes = " ".join(messages(migration, "note"))
    assert "retry_forever: shipper always retries" in notes
    assert "throw_exception: shipper blocks the sources" in notes
    assert "flush_mode" in notes and messages(migration) == []


def test_queue_length_without_chunk_size_uses_fluentds_default_chunk(tmp_path):
    buffer, _ = buffer_of(tmp_path, "  <buffer>\n    queue_limit_length 4\n  </buffer>\n")
    assert buffer == {"total_limit_bytes": "32MiB"}  # 4 x 8 MiB in memory


def test_queue_length_from_the_environment_uses_the_defaults_and_says_so(tmp_path):
    buffer, migration = buffer_of(tmp_path, """\
  <buffer>
    chunk_limit_size "#{ENV['CHUNK'] || '2M'}"
    queue_limit_length "#{ENV['QUEUE'] || '32'}"
  </buffer>
""")
    assert buffer == {"chunk_limit_bytes": "${CHUNK:-2MiB}", "total_limit_bytes": "64MiB"}
    assert any("computed from the defaults of QUEUE, CHUNK" in m
               for m in messages(migration, "note"))


def test_queue_length_without_a_known_value_is_a_warning(tmp_path):
    buffer, migration = buffer_of(tmp_path,
                                  "  <buffer>\n    queue_limit_length \"#{ENV['Q']}\"\n"
                                  "  </buffer>\n")
    assert "total_limit_bytes" not in buffer
    assert any("set buffer.total_limit_bytes by hand" in m for m in messages(migration))


def test_drop_oldest_chunk_blocks_with_a_warning(tmp_path):
    buffer, migration = buffer_of(tmp_path, "  <buffer>\n    overflow_action drop_oldest_chunk\n"
                                            "  </buffer>\n")
    assert buffer == {"when_full": "block"}
    assert any("drop_oldest_chunk has no equivalent" in m for m in messages(migration))


def test_unknown_buffer_keys_are_warnings_with_their_line(tmp_path):
    _, migration = buffer_of(tmp_path, "  <buffer>\n    timekey 1h\n  </buffer>\n")
    assert messages(migration) == ["fluent.conf:7: timekey '1h' in <buffer> has no equivalent "
                                   "in shipper's buffer; it is not converted"]


def test_a_buffer_type_from_the_environment_is_left_for_the_operator(tmp_path):
    buffer, migration = buffer_of(tmp_path, "  <buffer>\n    @type \"#{ENV['BUFFER_TYPE']}\"\n"
                                            "  </buffer>\n")
    assert "type" not in buffer
    assert any("write type: disk (for file) or memory" in m for m in messages(migration))


def test_fluentds_default_limits_are_stated_when_shippers_differ(tmp_path):
    _, migration = buffer_of(tmp_path, "  <buffer>\n    flush_interval 5s\n  </buffer>\n")
    assert messages(migration, "note") == [
        "fluent.conf:6: Fluentd's memory buffer defaults differ from shipper's: "
        "chunk_limit_size 8MiB -> chunk_limit_bytes 2MiB; total_limit_size 512MiB -> "
        "total_limit_bytes 256MiB; set buffer limits to keep Fluentd's"]
    _, migration = buffer_of(tmp_path, "  <buffer file>\n    @type file\n"
                                       "    chunk_limit_size 2M\n  </buffer>\n")
    assert "total_limit_size 64GiB -> total_limit_bytes 256MiB" in \
        " ".join(messages(migration, "note"))
    assert "chunk_limit_size" not in " ".join(m for m in messages(migration, "note")
                                              if "defaults differ" in m)
