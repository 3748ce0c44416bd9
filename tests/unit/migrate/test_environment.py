"""Settings the pod's environment drives are never lost without a word: what shipper cannot
follow is a warning naming the variable, and sizes keep Fluentd's units only in the file."""

from __future__ import annotations

from tests.unit.migrate.helpers import convert, messages, validate

TAIL = """\
<source>
  @type tail
  path /var/log/containers/*.log
  exclude_path "#{ENV['FLUENT_CONTAINER_TAIL_EXCLUDE_PATH'] || use_default}"
  tag kubernetes.*
</source>
<filter kubernetes.**>
  @type kubernetes_metadata
  watch "#{ENV['FLUENT_KUBERNETES_WATCH'] || 'true'}"
</filter>
<match **>
  @type elasticsearch
  target_index_key "#{ENV['FLUENT_ELASTICSEARCH_TARGET_INDEX_KEY'] || use_nil}"
  template_file "#{ENV['FLUENT_ELASTICSEARCH_TEMPLATE_FILE'] || use_nil}"
  <buffer>
    chunk_limit_size "#{ENV['FLUENT_ELASTICSEARCH_BUFFER_CHUNK_LIMIT_SIZE'] || '2M'}"
  </buffer>
</match>
"""


def test_every_environment_driven_setting_shipper_cannot_follow_is_a_warning(tmp_path):
    migration = convert(tmp_path, TAIL)
    assert [m.split(" ")[0:2] for m in messages(migration)] == [
        ["fluent.conf:4:", "exclude_path"],
        ["fluent.conf:13:", "target_index_key"],
        ["fluent.conf:14:", "template_file"],
        ["fluent.conf:16:", "chunk_limit_size:"]]
    assert "FLUENT_ELASTICSEARCH_BUFFER_CHUNK_LIMIT_SIZE as 2MiB" in messages(migration)[3]
    assert "watch comes from ENV['FLUENT_KUBERNETES_WATCH']" in \
        " ".join(messages(migration, "note"))
    assert migration.exit_code == 1


def test_the_default_of_a_size_is_converted_and_a_set_value_is_read_in_shipper_units(tmp_path):
    migration = convert(tmp_path, TAIL)
    unset = validate(migration)
    assert unset.outputs["elasticsearch"].buffer.chunk_limit_bytes == 2 * 2**20
    set_right = validate(migration, {"FLUENT_ELASTICSEARCH_BUFFER_CHUNK_LIMIT_SIZE": "4MiB"})
    assert set_right.outputs["elasticsearch"].buffer.chunk_limit_bytes == 4 * 2**20
