"""shipper tap: arguments to filters, merging agents' streams, pairing across agents."""

import argparse
import io

import orjson
import pytest

from shipper.cli import build_parser
from shipper.tap.cli import build_query, run
from shipper.tap.client import AgentStream, lines
from shipper.tap.event import tap_event
from shipper.tap.pair import Pairer
from shipper.tap.render import json_line, text_line
from tests.unit.tap.traffic import GATEWAY, ORDERS, Call, call_records


class FakeResponse:
    """A streamed HTTP response whose body arrives in the given pieces."""

    chunked = False

    def __init__(self, pieces, status=200):
        self.status = status
        self._pieces = list(pieces)

    def read1(self, n):
        return self._pieces.pop(0) if self._pieces else b""

    def read(self, n):
        return b"".join(self._pieces)[:n]

    def release_conn(self):
        pass


def agent(name, events=(), status=200, cut=7):
    body = b"".join(orjson.dumps(e) + b"\n\n" for e in events)  # with keep-alive lines
    pieces = [body[i:i + cut] for i in range(0, len(body), cut)]
    return AgentStream(name, lambda: FakeResponse(pieces, status))


def parse(*argv):
    return build_parser().parse_args(["tap", *argv])


def calls(n, prefix):
    out, inn = [], []
    for i in range(n):
        o, s = call_records(Call(GATEWAY, ORDERS, request_id=f"{prefix}{i}"), seed=i)
        out.append(tap_event(o))
        inn.append(tap_event(s))
    return out, inn


def test_targets_and_flags_become_the_server_side_filter():
    query = build_query(parse("workload/orders", "--ns", "shop", "--method", "GET,post",
                              "--response-code", "500-599,429", "--path", "/api"))
    assert query.to_query_string() == ("namespace=shop&workload=orders&method=GET%2CPOST&"
                                       "code=500-599%2C429&path=%2Fapi")
    assert build_query(parse("ns/shop")).namespace == "shop"
    assert build_query(parse("deploy/orders")).workload == "orders"
    assert build_query(parse("pod/orders-x")).pod == "orders-x"


@pytest.mark.parametrize("argv", [("svc/orders",), ("orders",), ("ns/a", "--ns", "b"),
                                  ("--response-code", "5x")])
def test_bad_arguments_are_refused(argv):
    with pytest.raises(ValueError):
        build_query(parse(*argv))


def test_the_cli_exits_2_on_a_bad_filter(capsys):
    args = parse("--response-code", "oops")
    assert args.func(args) == 2
    assert "response code" in capsys.readouterr().err


def test_lines_are_reassembled_from_any_cut():
    assert list(lines(iter([b'{"a"', b':1}\n\n{"b":2', b"}\n", b"\n"]))) == [b'{"a":1}',
                                                                             b'{"b":2}']


def test_two_agents_are_merged_into_one_output():
    out_events, in_events = calls(3, "r")
    out = io.StringIO()
    code = run([agent("node-1", out_events), agent("node-2", in_events)], None, json_line,
               out, io.StringIO())
    assert code == 0
    got = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert sorted(e["envoy"]["request_id"] for e in got) == ["r0", "r0", "r1", "r1", "r2",
                                                              "r2"]


def test_pairs_are_joined_across_agents():
    out_events, in_events = calls(4, "p")
    out = io.StringIO()
    run([agent("node-1", out_events), agent("node-2", in_events)], Pairer(), text_line, out,
        io.StringIO())
    printed = out.getvalue().splitlines()
    assert len(printed) == 4
    assert all("istio-system/istio-ingressgateway -> shop/orders GET / 200 - client 12ms "
               "server 9ms" in line for line in printed)


def test_count_stops_early():
    out_events, _ = calls(5, "c")
    out = io.StringIO()
    assert run([agent("a", out_events)], None, text_line, out, io.StringIO(), count=2) == 0
    assert len(out.getvalue().splitlines()) == 2


def test_a_failing_agent_is_reported_and_the_others_still_print():
    out_events, _ = calls(2, "f")
    out, err = io.StringIO(), io.StringIO()
    code = run([agent("good", out_events), agent("bad", status=404)], None, text_line, out,
               err)
    assert code == 0 and len(out.getvalue().splitlines()) == 2
    assert "bad: HTTP 404" in err.getvalue()
    assert run([agent("bad", status=503)], None, text_line, io.StringIO(),
               io.StringIO()) == 1


def test_parser_defaults():
    args = parse()
    assert isinstance(args, argparse.Namespace)
    assert (args.output, args.pair, args.port, args.agent) == ("text", False, 24231, [])


@pytest.mark.parametrize("code", ["6xx", "999", "600-700"])
def test_the_command_refuses_codes_no_request_has_instead_of_waiting(code, tmp_path):
    """A real ``shipper tap`` process exits 2 at once, before contacting any agent."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "shipper.cli", "tap", "--agent", "http://127.0.0.1:9",
         "--response-code", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert f"response code {code!r}" in done.stderr


@pytest.mark.parametrize("code", ["", " ", ","])
def test_an_empty_response_code_is_refused_not_taken_as_no_filter(code):
    """Leaving the option out means "any code"; ``--response-code ""`` (an unset shell
    variable, usually) is a mistake: exit 2 at once instead of tapping everything."""
    import subprocess
    import sys

    with pytest.raises(ValueError):
        build_query(parse("--response-code", code))
    done = subprocess.run(
        [sys.executable, "-m", "shipper.cli", "tap", "--agent", "http://127.0.0.1:9",
         "--response-code", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert "--response-code" in done.stderr and "empty" in done.stderr
    assert build_query(parse()).codes == (), "left out: no filter"
