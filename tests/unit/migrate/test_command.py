"""``shipper migrate-fluentd``: exit 0 converted, 1 with warnings, 2 unreadable input; the
output of a fully supported config passes ``shipper check`` as written."""

from __future__ import annotations

import errno
import os
import stat

from shipper.cli import main
from tests.unit.migrate.helpers import write

SUPPORTED = """\
<source>
  @type tail
  path /var/log/containers/*.log
  tag kubernetes.*
  read_from_head true
</source>

<filter kubernetes.**>
  @type kubernetes_metadata
</filter>

<match kubernetes.**>
  @type elasticsearch
  host elasticsearch.logging
  port 9200
  logstash_format true
  <buffer>
    flush_interval 5s
    chunk_limit_size 2M
  </buffer>
</match>
"""


def test_a_fully_supported_config_exits_0_and_passes_check(tmp_path, capsys):
    source = write(tmp_path, SUPPORTED)
    target = tmp_path / "shipper.yaml"
    assert main(["migrate-fluentd", str(source), "-o", str(target), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert err == f"wrote {target} (0 warnings)\n"
    assert main(["check", "-c", str(target)]) == 0
    assert capsys.readouterr().out == f"{target}: ok\n"


def test_warnings_exit_1_and_are_printed_as_file_line(tmp_path, capsys):
    source = write(tmp_path, SUPPORTED + "<match x.**>\n  @type s3\n</match>\n"
                                         "<filter **>\n  @type geoip\n</filter>\n")
    assert main(["migrate-fluentd", str(source)]) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith("# shipper configuration converted from")
    lines = [line for line in captured.err.splitlines() if ": warning: " in line]
    assert lines == [
        f"{source}:22: warning: <match x.**> @type s3: the output plugin s3 has no equivalent "
        "in shipper; records matching this pattern are not sent there",
        f"{source}:25: warning: <filter **> @type geoip comes after <match kubernetes.**> "
        f"@type elasticsearch ({source}:12); in Fluentd the records that match took never "
        "reached this filter, in shipper every filter sees every record whose tag it matches",
        f"{source}:25: warning: <filter **> @type geoip: the filter plugin geoip has no "
        "equivalent in shipper; it is not converted"]


def test_a_moved_secret_exits_1(tmp_path, capsys):
    source = write(tmp_path, SUPPORTED.replace("port 9200", "port 9200\n  user elastic\n"
                                                            "  password hunter2"))
    assert main(["migrate-fluentd", str(source), "-q"]) == 1
    captured = capsys.readouterr()
    assert "hunter2" not in captured.out + captured.err
    assert f"{source}:17: warning: elasticsearch password moved to ${{ES_PASSWORD}}" \
        in captured.err


def test_a_syntax_error_exits_2_with_file_and_line_and_writes_nothing(tmp_path, capsys):
    source = write(tmp_path, SUPPORTED.replace("</filter>", "</match>"))
    target = tmp_path / "shipper.yaml"
    assert main(["migrate-fluentd", str(source), "-o", str(target)]) == 2
    captured = capsys.readouterr()
    assert captured.err == (f"{source}:10: unmatched end tag </match>; expected </filter>\n")
    assert captured.out == "" and not target.exists()


def test_an_unreadable_file_exits_2(tmp_path, capsys):
    assert main(["migrate-fluentd", str(tmp_path / "missing.conf")]) == 2
    assert "missing.conf:1: cannot read file" in capsys.readouterr().err


def test_check_refuses_two_listeners_on_one_address(tmp_path, capsys):
    """What the doubled bitnami conversion wrote: it passed check and failed at run."""
    target = write(tmp_path, "sources:\n"
                             "  forward: {type: forward, listen: '0.0.0.0:24224'}\n"
                             "  forward_2: {type: forward, listen: '0.0.0.0:24224'}\n"
                             "outputs:\n  out: {type: stdout}\n", "shipper.yaml")
    assert main(["check", "-c", str(target)]) == 2
    assert "source forward_2 listens on 0.0.0.0:24224, which source forward already takes" \
        in capsys.readouterr().err


def test_input_above_the_size_limit_exits_2_and_writes_nothing(tmp_path, capsys):
    from shipper.migrate.files import MAX_INPUT_BYTES

    source = write(tmp_path, SUPPORTED + "#" * MAX_INPUT_BYTES)
    target = tmp_path / "shipper.yaml"
    assert main(["migrate-fluentd", str(source), "-o", str(target)]) == 2
    assert f"larger than {MAX_INPUT_BYTES} bytes" in capsys.readouterr().err
    assert not target.exists()


def test_includes_that_multiply_count_against_the_size_limit(tmp_path, capsys):
    write(tmp_path, "# padding\n" * 20_000, "leaf.conf")  # 200 KB, read 8 times
    for level in range(3):
        inner = "leaf.conf" if level == 0 else f"level{level - 1}.conf"
        write(tmp_path, f"@include {inner}\n@include {inner}\n", f"level{level}.conf")
    source = write(tmp_path, SUPPORTED + "@include level2.conf\n")
    assert main(["migrate-fluentd", str(source)]) == 2
    assert "larger than" in capsys.readouterr().err


def test_binary_input_exits_2_without_echoing_its_bytes(tmp_path, capsys):
    source = tmp_path / "fluent.conf"
    source.write_bytes(b"<source>\n  @type tail\n\x00\x01\xff\xfeSECRETBYTES\n")
    assert main(["migrate-fluentd", str(source)]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"{source}:3: not a text file (binary data); nothing converted\n"
    assert captured.out == ""
    source.write_bytes(b"<source>\n  @type tail \xff\xfe\n</source>\n")
    assert main(["migrate-fluentd", str(source)]) == 2
    assert "fluent.conf:2: not UTF-8 text" in capsys.readouterr().err


def test_a_misspelt_section_and_a_missing_include_exit_2(tmp_path, capsys):
    target = tmp_path / "shipper.yaml"
    source = write(tmp_path, SUPPORTED + "<sourc>\n  @type forward\n</sourc>\n")
    assert main(["migrate-fluentd", str(source), "-o", str(target)]) == 2
    assert capsys.readouterr().err == (
        f"{source}:22: unknown section <sourc> at the top level; Fluentd accepts <source>, "
        "<match>, <filter>, <label>, <system>, <worker> there\n")
    source = write(tmp_path, SUPPORTED + "@include outputs.conf\n")
    assert main(["migrate-fluentd", str(source), "-o", str(target)]) == 2
    assert f"{source}:22: @include outputs.conf: no such file" in capsys.readouterr().err
    assert not target.exists()


def test_an_output_in_a_missing_directory_or_a_directory_exits_2_in_one_line(tmp_path, capsys):
    source = write(tmp_path, SUPPORTED)
    missing = tmp_path / "nowhere" / "shipper.yaml"
    assert main(["migrate-fluentd", str(source), "-o", str(missing)]) == 2
    assert capsys.readouterr().err == (f"{missing}: cannot write: the directory "
                                       f"{missing.parent} does not exist\n")
    assert main(["migrate-fluentd", str(source), "-o", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"{tmp_path}: cannot write: it is a directory\n"


def test_a_directory_is_read_from_its_root_file(tmp_path, capsys):
    write(tmp_path / "etc", SUPPORTED, "fluentd.conf")
    assert main(["migrate-fluentd", str(tmp_path / "etc"), "-q"]) == 0
    assert "type: elasticsearch" in capsys.readouterr().out
    (tmp_path / "empty").mkdir()
    assert main(["migrate-fluentd", str(tmp_path / "empty")]) == 2
    assert capsys.readouterr().err == (f"{tmp_path / 'empty'}:1: no root file (fluent.conf, "
                                       "td-agent.conf, fluentd.conf) in this directory; give "
                                       "the file Fluentd is started with\n")


def test_output_equal_to_the_input_is_refused_and_the_input_kept(tmp_path, capsys):
    source = write(tmp_path, SUPPORTED)
    assert main(["migrate-fluentd", str(source), "-o", str(source)]) == 2
    assert source.read_text() == SUPPORTED
    assert "it is the input file" in capsys.readouterr().err


def test_output_with_a_trailing_slash_is_a_directory_that_must_exist(tmp_path, capsys):
    source = write(tmp_path, SUPPORTED)
    assert main(["migrate-fluentd", str(source), "-o", f"{tmp_path}/new/"]) == 2
    assert not (tmp_path / "new").exists()
    assert "does not exist" in capsys.readouterr().err


def test_an_empty_output_name_is_refused(tmp_path, capsys):
    source = write(tmp_path, SUPPORTED)
    assert main(["migrate-fluentd", str(source), "-o", ""]) == 2
    assert capsys.readouterr().err == ": cannot write: the name is empty\n"


def test_a_fifo_as_input_or_output_is_refused_without_blocking(tmp_path, capsys):
    source = write(tmp_path, SUPPORTED)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert main(["migrate-fluentd", str(source), "-o", str(fifo)]) == 2
    assert main(["migrate-fluentd", str(fifo), "-o", str(tmp_path / "out.yaml")]) == 2
    err = capsys.readouterr().err
    assert "not a regular file" in err.splitlines()[0]
    assert "not a regular file" in err.splitlines()[1]
    assert not (tmp_path / "out.yaml").exists()


def test_a_failed_write_keeps_the_previous_file_and_leaves_no_partial_one(
        tmp_path, capsys, monkeypatch):
    source = write(tmp_path, SUPPORTED)
    target = tmp_path / "shipper.yaml"
    target.write_text("previous\n")
    target.chmod(0o640)

    def failing_fsync(fd):  # the text is in the temporary file: fail as a full disk would
        raise OSError(errno.EFBIG, "File too large")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    assert main(["migrate-fluentd", str(source), "-o", str(target)]) == 2
    monkeypatch.undo()
    assert target.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fluent.conf", "shipper.yaml"]
    assert "File too large" in capsys.readouterr().err
    assert main(["migrate-fluentd", str(source), "-o", str(target)]) == 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert "kubernetes.**" in target.read_text()


def test_output_equal_to_an_included_file_is_refused_and_the_file_kept(tmp_path, capsys):
    included = write(tmp_path, SUPPORTED, "conf.d/app.conf")
    source = write(tmp_path, "@include conf.d/*.conf\n")
    assert main(["migrate-fluentd", str(source), "-o", str(included)]) == 2
    assert included.read_text() == SUPPORTED
    assert "which the configuration includes" in capsys.readouterr().err
