"""The YAML layer keeps lines, reads scalars by the YAML 1.2 core schema and builds only data."""

from __future__ import annotations

import math
from pathlib import Path
from textwrap import dedent

import pytest

from shipper.config.yamltree import (
    MAX_VALUES,
    Entry,
    Map,
    Node,
    Scalar,
    Seq,
    join_index,
    join_key,
    parse_yaml,
)


def tree_of(text: str) -> Node:
    tree, problems = parse_yaml(dedent(text), "c.yaml")
    assert [str(p) for p in problems] == []
    assert tree is not None
    return tree


def problems_of(text: str) -> list[str]:
    _, problems = parse_yaml(dedent(text), "c.yaml")
    return [str(p) for p in problems]


def value_of(text: str) -> object:
    tree = tree_of(f"key: {text}\n")
    assert isinstance(tree, Map)
    scalar = tree.entries[0].value
    assert isinstance(scalar, Scalar)
    return scalar.value


def test_every_key_and_value_knows_its_line() -> None:
    tree = tree_of("""\
        # a comment
        outputs:
          es:
            hosts:
              - a
              - b
        """)
    assert tree == Map((
        Entry("outputs", 2, Map((
            Entry("es", 3, Map((
                Entry("hosts", 4, Seq((Scalar("a", 5), Scalar("b", 6)), 5)),
            ), 4)),
        ), 3)),
    ), 2)


@pytest.mark.parametrize(("text", "expected"), [
    ("no", "no"), ("yes", "yes"), ("on", "on"), ("off", "off"), ("y", "y"),
    ("true", True), ("True", True), ("FALSE", False),
    ("~", None), ("null", None), ("", None),
    ("42", 42), ("-7", -7), ("010", 10), ("0o17", 15), ("0x1F", 31),
    ("1_000", "1_000"), ("12:30", "12:30"), ("2024-01-01", "2024-01-01"),
    ("1.5", 1.5), ("1e3", 1000.0), (".5", 0.5),
    ("'42'", "42"), ('"true"', "true"), ("${PORT}", "${PORT}"), ("!!str 42", "42"),
    ("!!int '42'", 42), ("!!float 1", 1.0),
])
def test_plain_scalars_follow_the_yaml_1_2_core_schema(text: str, expected: object) -> None:
    value = value_of(text)
    assert value == expected
    assert type(value) is type(expected)


def test_infinity_is_a_float() -> None:
    assert value_of(".inf") == math.inf
    assert value_of("-.Inf") == -math.inf


def test_a_duplicate_key_is_a_problem_naming_the_first_line() -> None:
    assert problems_of("""\
        a: 1
        b: 2
        a: 3
        """) == ["c.yaml:3: a: duplicate key; first defined on line 1"]


@pytest.mark.parametrize(("value", "tag"), [
    ("!!python/object/apply:os.system ['true']", "!!python/object/apply:os.system"),
    ("!!python/name:os.system", "!!python/name:os.system"),
    ("!!binary aGVsbG8=", "!!binary"),
    ("!!timestamp 2024-01-01", "!!timestamp"),
    ("!custom {a: 1}", "!custom"),
    ("!!set {a, b}", "!!set"),
])
def test_tags_other_than_the_plain_data_ones_are_refused(value: str, tag: str) -> None:
    assert problems_of(f"key: {value}\n") == [f"c.yaml:1: key: unsupported YAML tag {tag!r}"]


def test_an_explicit_tag_must_match_its_text() -> None:
    assert problems_of("key: !!int abc\n") == ["c.yaml:1: key: cannot read 'abc' as !!int"]


def test_keys_must_be_strings() -> None:
    assert problems_of("""\
        labels:
          1: one
          true: yes
        """) == ["c.yaml:2: labels: keys must be strings, got 1",
                 "c.yaml:3: labels: keys must be strings, got true"]


def test_a_merge_key_fills_in_missing_keys_and_explicit_keys_win() -> None:
    tree = tree_of("""\
        defaults: &defaults
          a: 1
          b: 2
        es:
          <<: *defaults
          b: 3
        """)
    assert isinstance(tree, Map)
    es = tree.get("es")
    assert es is not None
    assert es.value == Map((Entry("a", 2, Scalar(1, 2)), Entry("b", 6, Scalar(3, 6))), 5)


def test_earlier_merge_sources_win_over_later_ones() -> None:
    tree = tree_of("""\
        one: &one {a: 1}
        two: &two {a: 2, b: 2}
        both:
          <<: [*one, *two]
        """)
    assert isinstance(tree, Map)
    both = tree.get("both")
    assert both is not None
    assert both.value == Map((Entry("a", 1, Scalar(1, 1)), Entry("b", 2, Scalar(2, 2))), 4)


def test_a_merge_of_something_else_than_a_mapping_is_a_problem() -> None:
    assert problems_of("""\
        es:
          <<: 5
        """) == ["c.yaml:2: es: '<<' merges only a mapping or a list of mappings"]


def test_an_alias_that_contains_itself_is_a_problem_not_a_hang() -> None:
    assert problems_of("a: &x [1, *x]\n") == [
        "c.yaml:1: a[1]: an alias refers to a value that contains it"]


def test_an_alias_bomb_is_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 6)]
    assert problems_of("\n".join(lines)) == [
        f"c.yaml:1: <root>: the document expands to more than {MAX_VALUES} values "
        "through aliases"]


@pytest.mark.parametrize(("text", "problem"), [
    ("a: 1\n b: 2\n", "c.yaml:2: <root>: invalid YAML: mapping values are not allowed here"),
    ("a: [1, 2\nb: 3\n", "c.yaml:2: <root>: invalid YAML: while parsing a flow sequence on "
                         "line 1, expected ',' or ']', but got ':'"),
    ("a: *nowhere\n", "c.yaml:1: <root>: invalid YAML: found undefined alias 'nowhere'"),
    ("a: 1\n---\nb: 2\n", "c.yaml:2: <root>: invalid YAML: expected a single document in the "
                          "stream on line 1, but found another document"),
    ("a: 1\nb: \x07\n", "c.yaml:2: <root>: invalid YAML: special characters are not allowed"),
])
def test_a_syntax_error_is_one_problem_with_its_line(text: str, problem: str) -> None:
    tree, problems = parse_yaml(text, "c.yaml")
    assert tree is None
    assert [str(p) for p in problems] == [problem]


def test_an_empty_document_is_no_tree_and_no_problem() -> None:
    assert parse_yaml("# nothing here\n", "c.yaml") == (None, [])


@pytest.mark.parametrize(("parent", "key", "path"), [
    ("", "outputs", "outputs"),
    ("outputs", "es", "outputs.es"),
    ("labels", "app.kubernetes.io/name", "labels['app.kubernetes.io/name']"),
    ("labels", "has space", "labels['has space']"),
    ("headers", "X-Api-Key", "headers.X-Api-Key"),
])
def test_key_paths_stay_unambiguous(parent: str, key: str, path: str) -> None:
    assert join_key(parent, key) == path


def test_list_items_are_indexed_in_key_paths() -> None:
    assert join_index("sources.tail.paths", 2) == "sources.tail.paths[2]"


DEEP = Path(__file__).resolve().parents[2] / "fixtures" / "fluentd" / "hostile" / \
    "deep-nesting.yaml"


def test_a_document_nested_too_deeply_is_one_problem_not_a_traceback():
    tree, problems = parse_yaml(DEEP.read_text(), "deep.yaml")
    assert tree is None
    assert [(p.line, p.message) for p in problems] == [
        (1, "invalid YAML: nested too deeply to read")]


def test_check_of_a_deeply_nested_file_exits_2_with_one_line(capsys):
    from shipper.cli import main

    assert main(["check", "-c", str(DEEP)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nested too deeply" in err
