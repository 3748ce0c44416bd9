"""state_dir problems found before anything starts: by ``shipper check`` and ``shipper run``."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from shipper.cli import main
from shipper.config import statedir
from shipper.config.statedir import prepare_state_dir, state_dir_problem
from shipper.errors import StorageError

CONFIG = """\
state_dir: {state}
sources:
  containers: {{type: tail, include: ["{logs}/*.log"]}}
outputs:
  out: {{type: stdout}}
"""


def read_only(monkeypatch) -> None:
    real = os.statvfs

    def fake(path):
        st = real(path)
        return SimpleNamespace(f_flag=st.f_flag | os.ST_RDONLY)

    monkeypatch.setattr(statedir.os, "statvfs", fake)


def test_a_directory_that_can_be_created_is_fine_and_checking_creates_nothing(tmp_path):
    target = tmp_path / "a" / "b" / "state"
    assert state_dir_problem(target) is None
    assert not (tmp_path / "a").exists()


def test_a_file_in_the_way_is_named(tmp_path):
    (tmp_path / "state").write_text("")
    assert "is not a directory" in (state_dir_problem(tmp_path / "state") or "")
    problem = state_dir_problem(tmp_path / "state" / "sub")
    assert problem is not None and "cannot create" in problem and str(tmp_path) in problem


def test_a_read_only_file_system_is_named(tmp_path, monkeypatch):
    read_only(monkeypatch)
    assert "read-only file system" in (state_dir_problem(tmp_path) or "")
    assert "read-only file system" in (state_dir_problem(tmp_path / "new") or "")


def test_a_directory_without_write_permission_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(statedir.os, "access", lambda path, mode: False)
    assert "not writable" in (state_dir_problem(tmp_path) or "")


def test_prepare_creates_the_directory_and_leaves_no_probe(tmp_path):
    prepare_state_dir(tmp_path / "x" / "state")
    assert list((tmp_path / "x" / "state").iterdir()) == []


def test_prepare_raises_one_storage_error_naming_the_path(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(StorageError, match=str(tmp_path / "file" / "state")):
        prepare_state_dir(tmp_path / "file" / "state")


def write_config(tmp_path, state) -> str:
    cfg = tmp_path / "shipper.yaml"
    cfg.write_text(CONFIG.format(state=state, logs=tmp_path))
    return str(cfg)


@pytest.mark.parametrize("command", ["check", "run"])
def test_check_and_run_exit_2_with_one_line_on_a_read_only_state_dir(
        tmp_path, monkeypatch, capsys, command):
    read_only(monkeypatch)
    cfg = write_config(tmp_path, tmp_path / "state")
    assert main([command, "-c", cfg]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"{cfg}: state_dir: cannot create {tmp_path / 'state'}")
    assert "read-only file system" in err[0]
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize("command", ["check", "run"])
def test_check_and_run_exit_2_when_state_dir_cannot_be_created(tmp_path, capsys, command):
    (tmp_path / "in-the-way").write_text("")
    cfg = write_config(tmp_path, tmp_path / "in-the-way" / "state")
    assert main([command, "-c", cfg]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "state_dir: cannot create" in err[0], err
    assert "Traceback" not in "\n".join(err)


def test_run_reports_a_write_probe_that_fails(tmp_path, monkeypatch, capsys):
    real_open = os.open

    def refuse_probe(path, *args, **kwargs):
        if ".shipper-write-probe" in str(path):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(statedir.os, "open", refuse_probe)
    cfg = write_config(tmp_path, tmp_path / "state")
    assert main(["run", "-c", cfg]) == 2
    err = capsys.readouterr().err
    assert "cannot write to" in err and "Permission denied" in err


def test_check_config_only_skips_the_host(tmp_path, monkeypatch, capsys):
    read_only(monkeypatch)
    cfg = write_config(tmp_path, tmp_path / "state")
    assert main(["check", "--config-only", "-c", cfg]) == 0
    assert capsys.readouterr().out == f"{cfg}: ok\n"
