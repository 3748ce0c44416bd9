"""``shipper check`` (not ``--config-only``) refuses a config whose TLS or CA files are not
on this host, so ``run`` does not fail on them later."""

from __future__ import annotations

import textwrap

from shipper.cli import main

CONFIG = """\
state_dir: {state}
sources:
  a:
    type: forward
    listen: "127.0.0.1:0"
    tls:
      cert_file: {cert}
      key_file: {key}
outputs:
  o:
    type: stdout
    match: "**"
"""


def _write(tmp_path, cert, key):
    path = tmp_path / "shipper.yaml"
    path.write_text(textwrap.dedent(CONFIG.format(state=tmp_path / "state", cert=cert,
                                                  key=key)))
    (tmp_path / "state").mkdir(exist_ok=True)
    return path


def test_a_missing_tls_file_fails_check_but_not_check_config_only(tmp_path, capsys):
    (tmp_path / "tls.key").write_text("key")
    path = _write(tmp_path, tmp_path / "missing.crt", tmp_path / "tls.key")
    assert main(["check", "-c", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == (f"{path}: sources.a.tls.cert_file: {tmp_path / 'missing.crt'} does not "
                   "exist on this host\n")
    assert main(["check", "--config-only", "-c", str(path)]) == 0


def test_present_tls_files_pass_check(tmp_path, capsys):
    (tmp_path / "tls.crt").write_text("cert")
    (tmp_path / "tls.key").write_text("key")
    path = _write(tmp_path, tmp_path / "tls.crt", tmp_path / "tls.key")
    assert main(["check", "-c", str(path)]) == 0
    assert capsys.readouterr().out == f"{path}: ok\n"
