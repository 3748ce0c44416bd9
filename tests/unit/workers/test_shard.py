"""The shard function: stable across processes, even over many files, and keeping every
file a worker may have to follow together (generations, restarts, symlinked paths)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter

import pytest

from shipper.workers.shard import PathShard, shard_key, shard_of

PODS = "/var/log/pods"


def kubelet_paths(n: int) -> list[str]:
    return [f"{PODS}/ns{i % 7}_app-{i}_{i:08x}-uid/main/0.log" for i in range(n)]


def test_the_same_path_gets_the_same_worker_in_another_process():
    paths = [*kubelet_paths(50), "/var/log/app/app.log"]
    here = [shard_of(p, 4) for p in paths]
    code = ("import sys; from shipper.workers.shard import shard_of; "
            "print(','.join(str(shard_of(p, 4)) for p in sys.argv[1:]))")
    # a different PYTHONHASHSEED changes hash(): the shard must not depend on it
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code, *paths], env=env, check=True,
                         capture_output=True, text=True).stdout
    assert [int(x) for x in out.strip().split(",")] == here


@pytest.mark.parametrize("count", [2, 3, 4, 8])
def test_files_spread_evenly(count):
    per_worker = Counter(shard_of(p, count) for p in kubelet_paths(4000))
    assert set(per_worker) == set(range(count))
    expected = 4000 / count
    assert all(abs(n - expected) < 0.15 * expected for n in per_worker.values()), per_worker


def test_one_worker_owns_everything():
    assert {shard_of(p, 1) for p in kubelet_paths(20)} == {0}


def test_rotated_generations_share_their_files_key():
    assert shard_key("/var/log/app/app.log") == shard_key("/var/log/app/app.log.1")
    assert shard_key("/var/log/app/app.log") == shard_key("/var/log/app/app.log.2.gz")
    assert shard_key("/d/abc-json.log") == shard_key("/d/abc-json.log.1")
    assert shard_key("/var/log/app/app.log") != shard_key("/var/log/app/other.log")


def test_all_restarts_of_a_container_share_its_directory():
    directory = f"{PODS}/ns_pod_uid/nginx"
    keys = {shard_key(f"{directory}/{name}") for name in
            ("0.log", "1.log", "2.log", "0.log.20240101-120000", "1.log.20240101-120000.gz")}
    assert keys == {directory + "/"}


def test_a_symlink_and_its_target_belong_to_the_same_worker(tmp_path):
    container_dir = tmp_path / "pods" / "ns_pod_uid" / "app"
    container_dir.mkdir(parents=True)
    target = container_dir / "0.log"
    target.write_text("x\n")
    links = tmp_path / "containers"
    links.mkdir()
    link = links / f"pod_ns_app-{'a' * 64}.log"
    link.symlink_to(target)
    for count in (2, 3, 5):
        owners = [i for i in range(count) if PathShard(i, count).owns(str(link))]
        assert owners == [shard_of(str(target), count)]
        assert PathShard(owners[0], count).owns(str(target))


def test_an_index_outside_the_count_is_refused():
    with pytest.raises(ValueError, match=r"not in 0\.\.1"):
        PathShard(2, 2)
