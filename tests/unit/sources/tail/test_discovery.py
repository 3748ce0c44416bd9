"""Which paths are tailed and which directories are watched (pure parts of discovery)."""

import os
from pathlib import Path

import pytest

from shipper.sources.tail.discovery import Discovery


def test_compressed_and_temporary_rotations_are_always_excluded() -> None:
    discovery = Discovery(["/var/log/containers/*"], [])
    assert discovery.excluded("/var/log/pods/a/c/0.log.20240101-120000.gz")
    assert discovery.excluded("/x/0.log.20240101-120000.tmp")
    assert discovery.excluded("/x/logs.zip")
    assert not discovery.excluded("/var/log/containers/a.log")


def test_user_excludes_match_the_full_path_or_the_file_name() -> None:
    discovery = Discovery(["/var/log/containers/*.log"],
                          ["/var/log/containers/shipper-*", "*_kube-system_*"])
    assert discovery.excluded("/var/log/containers/shipper-abc_logging_shipper-1.log")
    assert discovery.excluded("/var/log/containers/dns_kube-system_coredns-1.log")
    assert not discovery.excluded("/var/log/containers/web_default_nginx-1.log")


def test_watch_dirs_are_the_glob_free_prefixes() -> None:
    discovery = Discovery(["/var/log/containers/*.log", "/var/log/pods/*/*/*.log",
                           "/var/log/containers/extra-*.log"], [])
    assert discovery.watch_dirs() == [("/var/log/containers", False), ("/var/log/pods", True)]


def test_missing_dirs_are_the_include_dirs_that_do_not_exist(tmp_path: Path) -> None:
    (tmp_path / "containers").mkdir()
    discovery = Discovery([str(tmp_path / "containers" / "*.log"),
                           str(tmp_path / "pods" / "*" / "*" / "*.log")], [])
    assert discovery.missing_dirs() == [str(tmp_path / "pods")]
    (tmp_path / "pods").mkdir()
    assert discovery.missing_dirs() == []


CID = "0123456789abcdef" * 4


def test_the_agents_own_pod_is_excluded_in_both_layouts() -> None:
    discovery = Discovery(["/var/log/containers/*.log"], [], own=("shipper-x7k2p", "logging"))
    assert discovery.excluded(f"/var/log/containers/shipper-x7k2p_logging_shipper-{CID}.log")
    assert discovery.excluded("/var/log/pods/logging_shipper-x7k2p_uid-1/shipper/0.log")
    assert not discovery.excluded(f"/var/log/containers/shipper-x7k2p_other_shipper-{CID}.log")
    assert not discovery.excluded(f"/var/log/containers/web-1_logging_nginx-{CID}.log")


def test_without_a_namespace_the_pod_name_alone_decides() -> None:
    discovery = Discovery(["/x/*.log"], [], own=("agent-1", None))
    assert discovery.excluded(f"/var/log/containers/agent-1_any_c-{CID}.log")


def test_own_pod_comes_from_the_downward_api_then_the_host_name() -> None:
    from shipper.sources.tail.discovery import own_pod

    assert own_pod({"POD_NAME": "p", "POD_NAMESPACE": "ns", "HOSTNAME": "h"}) == ("p", "ns")
    assert own_pod({"HOSTNAME": "h"}) == ("h", None)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                    reason="needs root to drop to another user")
def test_an_include_dir_with_mode_000_is_unreadable_for_a_non_root_agent(tmp_path):
    """The real failure, no seam: a child process drops to ``nobody`` and asks."""
    import subprocess
    import sys

    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "app.log").write_text("x\n")
    locked.chmod(0)
    code = (
        "import os, sys\n"
        "from shipper.sources.tail.discovery import Discovery\n"
        "os.setgid(65534); os.setuid(65534)\n"
        f"d = Discovery([{str(locked / '*.log')!r}], [])\n"
        "missing, unreadable = d.dir_problems()\n"
        "print(d.scan(), missing, sorted(unreadable))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.strip() == f"[] [] [{str(locked)!r}]"
