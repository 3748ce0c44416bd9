import pytest

from shipper.tagmatch import compile_tag_pattern


@pytest.mark.parametrize(("pattern", "tag", "expected"), [
    ("**", "kube.var.log.containers.x.log", True),
    ("kube.**", "kube", True),
    ("kube.**", "kube.a.b", True),
    ("kube.**", "kubex.a", False),
    ("kube.*", "kube.a", True),
    ("kube.*", "kube.a.b", False),
    ("**.log", "kube.a.log", True),
    ("**.log", "log", True),
    ("a.**.z", "a.z", True),
    ("a.**.z", "a.b.c.z", True),
    ("app.{web,api}", "app.api", True),
    ("app.{web,api}", "app.db", False),
    ("foo bar.*", "bar.x", True),
    ("**.**.z0", "a.z0", True),  # a run of ** is one **, as in Fluentd
    ("**.**.z0", "z0", True),
    ("a.**.**.z", "a.z", True),
    ("a.**.**", "a", True),
    ("**.**.z0", "a.z1", False),
])
def test_fluentd_match_semantics(pattern, tag, expected):
    assert bool(compile_tag_pattern(pattern).match(tag)) is expected


def test_a_long_run_of_globstars_compiles_and_fails_fast():
    regex = compile_tag_pattern(".".join(["**"] * 40) + ".z0")
    assert regex.match("a." * 30 + "z1") is None
    assert regex.match("a." * 30 + "z0")
