"""The node log generator must be deterministic and its manifest must match what is on disk."""

from __future__ import annotations

import os
import re
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shipper.demo import DEFAULT_BASE_TIME, Manifest, generate_node_logs
from tests.unit.demo._reader import ParsedFile, read_log

SPLIT = 16384
# fluent-plugin-kubernetes_metadata_filter REGEX_VAR_LOG_CONTAINERS, on the file name.
KUBELET_LINK = re.compile(
    r"^(?P<pod>[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)_"
    r"(?P<ns>[^_]+)_(?P<container>.+)-(?P<id>[a-z0-9]{64})\.log$"
)
SAFE = "[bcdfghjklmnpqrstvwxz2456789]"  # Kubernetes' alphabet for generated name suffixes
POD_NAME = re.compile(rf"^[a-z0-9-]+-{SAFE}{{8,10}}-{SAFE}{{5}}$")
RFC3339_NANO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{0,8}[1-9])?Z$")
ISTIO_TEXT = re.compile(
    r'^\[(?P<start_time>[^\]]+)\] "(?P<method>\S+) (?P<path>\S+) (?P<protocol>\S+)" '
    r"(?P<response_code>\d+) (?P<response_flags>\S+) (?P<response_code_details>\S+) "
    r'(?P<connection_termination_details>\S+) "(?P<upstream_transport_failure_reason>[^"]*)" '
    r"(?P<bytes_received>\d+) (?P<bytes_sent>\d+) (?P<duration>\S+) (?P<upstream_service_time>\S+) "
    r'"(?P<x_forwarded_for>[^"]*)" "(?P<user_agent>[^"]*)" "(?P<request_id>[^"]*)" '
    r'"(?P<authority>[^"]*)" "(?P<upstream_host>[^"]*)" (?P<upstream_cluster>\S+) '
    r"(?P<upstream_local_address>\S+) (?P<downstream_local_address>\S+) "
    r"(?P<downstream_remote_address>\S+) (?P<requested_server_name>\S+) (?P<route_name>\S+)$"
)
ZAP = re.compile(
    r"^(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)\t(?P<level>[a-z]+)\t"
    r"(?:(?P<scope>[A-Za-z0-9_ -]+)\t)?(?P<msg>.*)$"
)
MARK = re.compile(rb" seq=(\d+):(\d+)$")

SPECIALS = {
    "long_line_every": 300,
    "empty_line_every": 500,
    "non_ascii_every": 200,
    "invalid_utf8_every": 600,
}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Manifest, dict[int, ParsedFile]]:
    root = tmp_path_factory.mktemp("node")
    manifest = generate_node_logs(root, seed=11, lines=3000, mark=True, **SPECIALS)
    parsed = {f.index: read_log(root / f.symlink) for f in manifest.files}
    return root, manifest, parsed


def _tree(root: Path) -> dict[str, bytes | str]:
    out: dict[str, bytes | str] = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            p = Path(dirpath, name)
            rel = str(p.relative_to(root))
            out[rel] = f"-> {os.readlink(p)}" if p.is_symlink() else p.read_bytes()
    return out


def test_same_seed_gives_byte_identical_trees(tmp_path: Path) -> None:
    kwargs = {"lines": 1500, "mark": False, **SPECIALS}
    a = generate_node_logs(tmp_path / "a", seed=5, **kwargs)
    b = generate_node_logs(tmp_path / "b", seed=5, **kwargs)
    c = generate_node_logs(tmp_path / "c", seed=6, **kwargs)
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")
    assert a.to_json() == b.to_json()
    assert _tree(tmp_path / "a") != _tree(tmp_path / "c")
    assert c.total_records == a.total_records == 1500


def test_manifest_counts_match_disk(node: tuple[Path, Manifest, dict[int, ParsedFile]]) -> None:
    root, manifest, parsed = node
    for f in manifest.files:
        p = parsed[f.index]
        recs = p.records
        assert p.fmt == f.format
        assert len(recs) == f.records
        assert p.physical_lines == f.physical_lines
        assert (root / f.path).stat().st_size == f.bytes
        assert sum(r.stream == "stderr" for r in recs) == f.stderr_records
        assert sum(len(r.pieces) > 1 for r in recs) == f.long_records
        assert sum(len(r.pieces) - 1 for r in recs) == f.partial_lines
        assert sum(r.content == f" seq={f.index}:{k}".encode() for k, r in enumerate(recs)) == (
            f.empty_records
        )
        invalid = docker_invalid = 0
        non_ascii = 0
        for r in recs:
            try:
                text = r.content.decode("utf-8")
            except UnicodeDecodeError:
                invalid += 1
                continue
            if "\ufffd" in text:
                docker_invalid += 1
            elif not text.isascii():
                non_ascii += 1
        assert invalid + docker_invalid == f.invalid_utf8_records
        assert (docker_invalid if f.format == "cri" else invalid) == 0
        assert non_ascii == f.non_ascii_records
        assert p.records[0].times[0] == f.first_time if recs else f.first_time == ""
    assert manifest.total_records == 3000 == sum(len(p.records) for p in parsed.values())
    assert manifest.total_physical_lines == sum(p.physical_lines for p in parsed.values())
    assert manifest.total_bytes == sum(f.bytes for f in manifest.files)
    by_ns: Counter[str] = Counter()
    by_container: Counter[str] = Counter()
    for f in manifest.files:
        by_ns[f.namespace] += len(parsed[f.index].records)
        by_container[f.container] += len(parsed[f.index].records)
    assert manifest.records_by_namespace == dict(by_ns)
    assert manifest.records_by_container == dict(by_container)
    assert {"istio-system", "bookinfo", "shop"} <= set(by_ns)


def test_special_lines_are_all_present(node: tuple[Path, Manifest, dict[int, ParsedFile]]) -> None:
    _, manifest, _ = node
    totals = Counter[str]()
    for f in manifest.files:
        totals.update(
            long=f.long_records,
            empty=f.empty_records,
            non_ascii=f.non_ascii_records,
            invalid=f.invalid_utf8_records,
        )
    assert totals == {"long": 10, "empty": 6, "non_ascii": 15, "invalid": 5}


def test_every_record_is_marked_once_in_order(
    node: tuple[Path, Manifest, dict[int, ParsedFile]],
) -> None:
    _, manifest, parsed = node
    for f in manifest.files:
        marks = [MARK.search(r.content) for r in parsed[f.index].records]
        assert all(marks)
        assert [(int(m.group(1)), int(m.group(2))) for m in marks if m] == [
            (f.index, k) for k in range(f.records)
        ]


def test_long_lines_are_split_exactly_like_the_runtimes(
    node: tuple[Path, Manifest, dict[int, ParsedFile]],
) -> None:
    _, manifest, parsed = node
    seen = Counter[str]()
    for f in manifest.files:
        for r in parsed[f.index].records:
            if len(r.pieces) > 1:
                seen[f.format] += 1
                assert r.pieces[:-1] == [SPLIT] * (len(r.pieces) - 1)
                assert 0 < r.pieces[-1] < SPLIT or r.pieces[-1] == len(r.content) % SPLIT
                assert len(r.content) > SPLIT
            else:
                assert len(r.content) <= SPLIT
    assert seen["docker"] and seen["cri"]


def test_docker_partials_have_no_newline_and_cri_uses_p_tags(
    node: tuple[Path, Manifest, dict[int, ParsedFile]],
) -> None:
    root, manifest, _ = node
    for f in manifest.files:
        if not f.long_records:
            continue
        data = (root / f.path).read_bytes()
        if f.format == "cri":
            assert data.count(b" P ") >= f.partial_lines
        else:
            assert data.count(b'","stream":"') - data.count(b'\\n","stream":"') == f.partial_lines


def test_paths_and_symlinks_follow_kubelet(
    node: tuple[Path, Manifest, dict[int, ParsedFile]],
) -> None:
    root, manifest, _ = node
    links = sorted(p.name for p in (root / "var/log/containers").iterdir())
    assert links == sorted(Path(f.symlink).name for f in manifest.files)
    ids = set()
    for f in manifest.files:
        link = root / f.symlink
        m = KUBELET_LINK.match(link.name)
        assert m, link.name
        assert (m["pod"], m["ns"], m["container"], m["id"]) == (
            f.pod,
            f.namespace,
            f.container,
            f.container_id,
        )
        assert re.fullmatch(r"[0-9a-f]{64}", f.container_id)
        assert POD_NAME.match(f.pod), f.pod
        assert str(uuid.UUID(f.pod_uid)) == f.pod_uid
        assert link.is_symlink() and not os.path.isabs(os.readlink(link))
        assert link.resolve() == (root / f.path).resolve()
        assert f.path == f"var/log/pods/{f.namespace}_{f.pod}_{f.pod_uid}/{f.container}/0.log"
        ids.add(f.container_id)
    assert len(ids) == len(manifest.files)


def test_formats_are_mixed_per_pod_and_can_be_forced(
    node: tuple[Path, Manifest, dict[int, ParsedFile]], tmp_path: Path
) -> None:
    _, manifest, _ = node
    per_pod: dict[str, set[str]] = {}
    for f in manifest.files:
        per_pod.setdefault(f.pod, set()).add(f.format)
    assert all(len(v) == 1 for v in per_pod.values())
    counts = Counter(f.format for f in manifest.files)
    assert abs(counts["docker"] - counts["cri"]) <= 2
    forced = generate_node_logs(tmp_path, seed=11, lines=200, log_format="cri", files=5)
    assert {f.format for f in forced.files} == {"cri"}
    assert len(forced.files) == 5


def test_timestamps_increase_from_the_base_time(
    node: tuple[Path, Manifest, dict[int, ParsedFile]],
) -> None:
    _, manifest, parsed = node
    base = DEFAULT_BASE_TIME.strftime("%Y-%m-%dT%H:%M:%S")
    for f in manifest.files:
        stamps = [t for r in parsed[f.index].records for t in r.times]
        assert all(RFC3339_NANO.match(t) for t in stamps)
        # Same date and zone, so fixed-width comparison after padding the fraction works.
        keys = [_sort_key(t) for t in stamps]
        assert keys == sorted(keys) and len(set(keys)) == len(keys)
        assert keys[0] > _sort_key(base + "Z")
        assert stamps[-1] == f.last_time


def _sort_key(ts: str) -> str:
    head, _, frac = ts[:-1].partition(".")
    return head + "." + frac.ljust(9, "0")


def test_content_looks_like_istio_and_apps(
    node: tuple[Path, Manifest, dict[int, ParsedFile]],
) -> None:
    _, manifest, parsed = node
    codes: Counter[str] = Counter()
    flags: Counter[str] = Counter()
    clusters: set[str] = set()
    for f in manifest.files:
        recs = parsed[f.index].records
        texts = [MARK.sub(b"", r.content).decode("utf-8", "replace") for r in recs]
        if f.container == "istio-proxy":
            for t in texts:
                if t.startswith("["):
                    m = ISTIO_TEXT.match(t)
                    assert m, t[:300]
                    codes[m["response_code"]] += 1
                    flags[m["response_flags"]] += 1
                    clusters.add(m["upstream_cluster"].split("|")[0])
                elif t.strip():
                    assert ZAP.match(t), t
        elif f.container == "discovery":
            assert all(ZAP.match(t) for t in texts if t.strip())
        elif f.container == "orders":
            assert any(t.startswith("\tat ") for t in texts)
            assert any(t.startswith("Caused by: ") for t in texts)
    assert codes["200"] > sum(codes.values()) * 0.8
    assert any(c.startswith("4") for c in codes) and any(c.startswith("5") for c in codes)
    assert {"UF", "UC"} & set(flags)
    assert {"inbound", "outbound", "PassthroughCluster"} <= clusters


def test_manifest_json_round_trip(node: tuple[Path, Manifest, dict[int, ParsedFile]]) -> None:
    _, manifest, _ = node
    again = Manifest.from_json(manifest.to_json())
    assert again == manifest
    assert "records=3,000" in manifest.summary()


def test_files_parameter_and_exact_line_distribution(tmp_path: Path) -> None:
    m = generate_node_logs(tmp_path / "a", seed=1, lines=777, files=50, long_line_every=0)
    assert len(m.files) == 50
    assert sum(f.records for f in m.files) == 777
    assert len({f.pod for f in m.files}) > 20
    empty = generate_node_logs(tmp_path / "b", seed=1, lines=0)
    assert empty.total_records == 0 and all(f.bytes == 0 for f in empty.files)


def test_refuses_to_mix_with_an_existing_tree(tmp_path: Path) -> None:
    generate_node_logs(tmp_path, seed=1, lines=10)
    with pytest.raises(FileExistsError):
        generate_node_logs(tmp_path, seed=2, lines=10)


def test_custom_base_time_is_respected(tmp_path: Path) -> None:
    base = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    m = generate_node_logs(tmp_path, seed=3, lines=50, base_time=base)
    assert m.base_time == "2030-01-02T03:04:05Z"
    firsts = [f.first_time for f in m.files if f.records]
    assert firsts and all("2030-01-02T03:04:05" < t < "2030-01-02T03:30" for t in firsts)


def test_the_java_preset_joins_each_spring_event_into_one_record(
    node: tuple[Path, Manifest, dict[int, ParsedFile]],
) -> None:
    # The demo turns the java preset on for the Spring Boot app and expects
    # records - event_lines + events documents: the generator's count of its own events
    # must be what the preset makes of the file.
    from shipper.sources.tail.config import MultilineConfig
    from shipper.sources.tail.formats import make_decoder
    from shipper.sources.tail.paths import parse_path

    root, manifest, _ = node
    spring = [f for f in manifest.files if f.kind == "spring"]
    assert spring and all(f.events > 0 and f.event_lines > 2 * f.events for f in spring)
    for f in spring:
        path = f.symlink_in(root)
        decoder = make_decoder(f.format, "id", parse_path(str(path), "kube").static_fields(),
                               1 << 20, MultilineConfig(preset="java"))
        lines = f.path_in(root).read_bytes().split(b"\n")[:-1]
        records, _ = decoder.decode(lines, 0)
        records += decoder.flush()
        assert len(records) == f.records - f.event_lines + f.events, f.symlink
        traces = [r for r in records if "\n\tat " in r.body["log"]]
        assert len(traces) == f.events
