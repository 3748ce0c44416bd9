import orjson

from shipper.deadletter import DeadLetterStore
from shipper.metrics import Metrics
from shipper.protocols import ItemError


def read_all(directory):
    return [orjson.loads(line) for f in sorted(directory.glob("*.ndjson"))
            for line in f.read_bytes().splitlines()]


def test_each_line_keeps_record_target_and_reason(tmp_path):
    store = DeadLetterStore(tmp_path, Metrics())
    err = ItemError(400, "document_parsing_exception", "failed to parse field [log]")
    assert store.write("es", [({"index": "logstash-2026.11.22", "record": {"log": {}}}, err)]) == 1
    [line] = read_all(tmp_path)
    assert line["record"] == {"log": {}}
    assert line["index"] == "logstash-2026.11.22"
    assert line["error"] == {"status": 400, "type": "document_parsing_exception",
                             "reason": "failed to parse field [log]"}
    assert line["output"] == "es"


def test_store_is_bounded_and_counts_what_it_cannot_keep(tmp_path):
    m = Metrics()
    store = DeadLetterStore(tmp_path, m, max_bytes=400)
    err = ItemError(400, "x", "y")
    entries = [({"record": {"n": i, "pad": "p" * 50}}, err) for i in range(10)]
    stored = store.write("es", entries)
    assert 0 < stored < 10
    assert len(read_all(tmp_path)) == stored
    dropped = m.registry.get_sample_value("shipper_records_dropped_total",
                                          {"output": "es", "reason": "dead_letter_full"})
    assert dropped == 10 - stored
    assert sum(f.stat().st_size for f in tmp_path.glob("*.ndjson")) <= 400
