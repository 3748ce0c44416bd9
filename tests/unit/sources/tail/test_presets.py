# ruff: noqa: E501  (the traces are real output, long lines included)
"""Multiline presets on the real output of each runtime: every trace one record, every
ordinary line around it its own record, streams joined apart, bounds kept."""

from __future__ import annotations

import orjson
import pytest

from shipper.record import Record
from shipper.sources.tail.config import MultilineConfig
from shipper.sources.tail.formats import CriDecoder, DockerDecoder
from shipper.sources.tail.multiline import PresetMultiline, build
from shipper.sources.tail.paths import parse_path
from shipper.sources.tail.presets import PRESETS

# -- the traces, as each runtime prints them ----------------------------------------------

JAVA = """\
java.lang.IllegalStateException: Failed to process order 42
\tat com.example.shop.OrderService.process(OrderService.java:57)
\tat com.example.shop.OrderController.submit(OrderController.java:31)
\tat java.base/jdk.internal.reflect.DirectMethodHandleAccessor.invoke(DirectMethodHandleAccessor.java:103)
\tat java.base/java.lang.reflect.Method.invoke(Method.java:580)
\tSuppressed: java.io.IOException: close failed
\t\tat com.example.shop.Db.close(Db.java:12)
\t\tat com.example.shop.OrderService.process(OrderService.java:60)
\t\t... 3 more
Caused by: java.sql.SQLException: Connection refused
\tat com.example.shop.Db.query(Db.java:88)
\tat com.example.shop.OrderService.process(OrderService.java:55)
\t... 3 more
Caused by: java.net.ConnectException: Connection refused
\tat java.base/sun.nio.ch.Net.connect0(Native Method)
\tat java.base/sun.nio.ch.Net.connect(Net.java:579)
\t... 5 more"""

JAVA_UNCAUGHT = """\
Exception in thread "main" java.lang.NullPointerException: Cannot invoke "String.length()" because "s" is null
\tat Main.length(Main.java:9)
\tat Main.main(Main.java:4)"""

JAVA_LOGBACK = """\
2024-05-01 12:00:00.123 ERROR 1 --- [nio-8080-exec-1] c.e.shop.OrderController : Request failed
org.springframework.dao.DataAccessResourceFailureException: db down
\tat org.springframework.jdbc.core.JdbcTemplate.execute(JdbcTemplate.java:376)
\tat com.example.shop.OrderController.submit(OrderController.java:31)
Caused by: java.net.SocketTimeoutException: Read timed out
\tat java.base/java.net.SocketInputStream.read(SocketInputStream.java:168)
\t... 12 common frames omitted"""

PYTHON = """\
Traceback (most recent call last):
  File "/app/worker.py", line 12, in fetch
    return client.get(url)
           ^^^^^^^^^^^^^^^
  File "/app/client.py", line 40, in get
    raise ConnectionError("refused")
ConnectionError: refused

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/app/worker.py", line 14, in fetch
    cleanup()
  File "/app/worker.py", line 30, in cleanup
    raise OSError(5, "Input/output error")
OSError: [Errno 5] Input/output error

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/app/worker.py", line 20, in <module>
    main()
  File "/app/worker.py", line 16, in main
    raise RuntimeError("fetch failed") from exc
RuntimeError: fetch failed"""

PYTHON_LOGGED = """\
ERROR:root:job 7 failed
Traceback (most recent call last):
  File "/app/jobs.py", line 3, in run
    1 / 0
    ~~^~~
ZeroDivisionError: division by zero"""

PYTHON_GROUP = """\
  + Exception Group Traceback (most recent call last):
  |   File "/app/tasks.py", line 8, in <module>
  |     raise ExceptionGroup("two", [ValueError("a"), TypeError("b")])
  | ExceptionGroup: two (2 sub-exceptions)
  +-+---------------- 1 ----------------
    | ValueError: a
    +---------------- 2 ----------------
    | TypeError: b
    +------------------------------------"""

GO = """\
panic: runtime error: invalid memory address or nil pointer dereference
[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x48f4b6]

goroutine 1 [running]:
main.(*Server).handle(0x0, {0x4c1f20, 0xc000012345})
\t/src/app/server.go:42 +0x16
main.main()
\t/src/app/main.go:17 +0x85

goroutine 6 [chan receive]:
main.worker(0xc00001c0c0)
\t/src/app/worker.go:9 +0x2d
created by main.main in goroutine 1
\t/src/app/main.go:12 +0x45

goroutine 7 gp=0xc000003340 m=nil [select, 2 minutes]:
net/http.(*persistConn).writeLoop(0xc0000a4000)
\t/usr/local/go/src/net/http/transport.go:2421 +0xe5
created by net/http.(*Transport).dialConn in goroutine 6
\t/usr/local/go/src/net/http/transport.go:1777 +0x16f1
exit status 2"""

GO_RECOVERED = """\
panic: boom [recovered]
\tpanic: boom again

goroutine 1 [running]:
main.main.func1()
\t/app/main.go:10 +0x5d
panic({0x45e0a0?, 0x4d8b40?})
\t/usr/local/go/src/runtime/panic.go:770 +0x132
main.main()
\t/app/main.go:14 +0x49"""

GO_DEADLOCK = """\
fatal error: all goroutines are asleep - deadlock!

goroutine 1 [chan receive]:
main.main()
\t/app/main.go:5 +0x2d"""

NODE = """\
TypeError: Cannot read properties of undefined (reading 'id')
    at getUser (/app/src/users.js:14:22)
    at /app/src/routes.js:8:18
    at Layer.handle [as handle_request] (/app/node_modules/express/lib/router/layer.js:95:5)
    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)"""

NODE_UNCAUGHT = """\
/app/index.js:9
    throw new Error('request failed', { cause: err });
    ^

Error: request failed
    at Object.<anonymous> (/app/index.js:9:11)
    at Module._compile (node:internal/modules/cjs/loader:1256:14)
    ... 5 lines matching cause stack trace ...
    at node:internal/main/run_main_module:23:47 {
  [cause]: Error: connect ECONNREFUSED 127.0.0.1:5432
      at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1555:16) {
    errno: -111,
    code: 'ECONNREFUSED'
  }
}

Node.js v20.11.0"""

DOTNET = """\
System.InvalidOperationException: Order 42 could not be saved
 ---> Microsoft.Data.SqlClient.SqlException (0x80131904): Execution Timeout Expired.
   at Microsoft.Data.SqlClient.SqlConnection.OnError(SqlException exception, Boolean breakConnection)
   at Shop.Data.OrderRepository.Save(Order order) in /src/Shop/Data/OrderRepository.cs:line 31
   --- End of inner exception stack trace ---
   at Shop.Data.OrderRepository.Save(Order order) in /src/Shop/Data/OrderRepository.cs:line 35
   at Shop.Api.OrdersController.Post(Order order) in /src/Shop/Api/OrdersController.cs:line 22
--- End of stack trace from previous location ---
   at Microsoft.AspNetCore.Mvc.Infrastructure.ActionMethodExecutor.Execute(ObjectMethodExecutor executor)"""

DOTNET_UNHANDLED = """\
Unhandled exception. System.ArgumentNullException: Value cannot be null. (Parameter 'name')
   at Shop.Program.Greet(String name) in /src/Shop/Program.cs:line 14
   at Shop.Program.Main(String[] args) in /src/Shop/Program.cs:line 9"""

RUBY = """\
/app/lib/shop/order.rb:12:in `save!': order 42 is invalid (Shop::ValidationError)
\tfrom /app/lib/shop/checkout.rb:30:in `block in run'
\tfrom /app/lib/shop/checkout.rb:28:in `each'
\tfrom bin/checkout:5:in `<main>'
/app/lib/shop/db.rb:7:in `insert': connection refused (Shop::DbError)
\tfrom /app/lib/shop/order.rb:10:in `save!'
\t ... 3 levels..."""

RUBY_34 = """\
app.rb:2:in 'Integer#/': divided by 0 (ZeroDivisionError)
\tfrom app.rb:2:in 'Object#divide'
\tfrom app.rb:5:in '<main>'"""

RUBY_RAILS = """\
E, [2024-05-01T12:00:00.123456 #1] ERROR -- : undefined method `name' for nil (NoMethodError)
app/models/order.rb:12:in `label'
app/controllers/orders_controller.rb:8:in `show'"""

BEFORE = "2024-05-01 12:00:00 INFO request started"
AFTER = "2024-05-01 12:00:01 INFO request done"


def rec(log: str, stream: str = "stdout", ident: str = "x-0") -> Record:
    return Record({"log": log, "stream": stream}, 1, "t", ident)


def joined(preset: str, lines: list[str] | list[tuple[str, str]], max_lines: int = 500,
           max_bytes: int = 1 << 20) -> list[str]:
    """Feed lines (or (stream, line) pairs) through the preset; the shipped logs in order."""
    agg = build(MultilineConfig(preset=preset, max_lines=max_lines, max_bytes=max_bytes), [])
    assert isinstance(agg, PresetMultiline)
    out = []
    for offset, item in enumerate(lines):
        stream, text = item if isinstance(item, tuple) else ("stdout", item)
        done = agg.add(rec(text, stream, f"x-{offset}"), offset)
        if done is not None:
            out.append(done.body["log"])
    out += [r.body["log"] for r in agg.flush()]
    return out


@pytest.mark.parametrize(("preset", "trace"), [
    ("java", JAVA), ("java", JAVA_UNCAUGHT), ("java", JAVA_LOGBACK),
    ("python", PYTHON), ("python", PYTHON_LOGGED), ("python", PYTHON_GROUP),
    ("go", GO), ("go", GO_RECOVERED), ("go", GO_DEADLOCK),
    ("node", NODE), ("node", NODE_UNCAUGHT),
    ("dotnet", DOTNET), ("dotnet", DOTNET_UNHANDLED),
    ("ruby", RUBY), ("ruby", RUBY_34), ("ruby", RUBY_RAILS),
], ids=lambda v: v if v in PRESETS else None)
def test_a_trace_between_ordinary_lines_is_one_record(preset: str, trace: str) -> None:
    lines = [BEFORE, *trace.split("\n"), AFTER]
    assert joined(preset, lines) == [BEFORE, trace, AFTER]


@pytest.mark.parametrize(("preset", "trace"), [
    ("java", JAVA), ("python", PYTHON), ("go", GO), ("node", NODE), ("dotnet", DOTNET),
    ("node", NODE_UNCAUGHT),
])
def test_two_traces_in_a_row_stay_two_records(preset: str, trace: str) -> None:
    lines = trace.split("\n") * 2
    assert joined(preset, lines) == [trace, trace]


def test_ruby_prints_a_cause_like_a_second_trace_so_they_join() -> None:
    # Ruby's full_message writes the cause as a header line and "from" lines, the same
    # shape as a new trace: two traces in a row join; an ordinary line between keeps them
    # apart.
    assert joined("ruby", (RUBY + "\n" + RUBY_34).split("\n")) == [RUBY + "\n" + RUBY_34]
    assert joined("ruby", [*RUBY.split("\n"), AFTER, *RUBY_34.split("\n")]) == [
        RUBY, AFTER, RUBY_34]


def test_a_log_line_at_error_level_keeps_the_trace_it_logged() -> None:
    # "ERROR ..." directly followed by an exception: one event. An INFO line directly
    # followed by an uncaught exception (another thread's) stays apart from it.
    error = "2024-05-01 12:00:00 ERROR Request failed"
    assert joined("java", [error, *JAVA.split("\n"), AFTER]) == [error + "\n" + JAVA, AFTER]
    assert joined("java", [BEFORE, *JAVA.split("\n")]) == [BEFORE, JAVA]
    net = ["fail: Shop.Api.OrdersController[0]", "      Saving order 42 failed",
           "      System.InvalidOperationException: Order 42 could not be saved",
           "         at Shop.Data.OrderRepository.Save(Order order)"]
    assert joined("dotnet", [*net, AFTER]) == ["\n".join(net), AFTER]
    node = ["error: request failed", *NODE.split("\n")]
    assert joined("node", [*node, AFTER]) == ["\n".join(node), AFTER]


def test_ordinary_lines_are_never_joined() -> None:
    lines = [BEFORE, "  indented config dump: a=1", "Error: not a stack", "", AFTER,
             "at the end of the day", "panic: nothing follows"]
    for name in PRESETS:
        out = joined(name, lines)
        # Only the lines a preset's rules name may join: none of these do, except that
        # python and node keep nothing but themselves, and go's panic line stands alone.
        assert out == lines, (name, out)


def test_stdout_and_stderr_are_joined_apart() -> None:
    trace = JAVA_UNCAUGHT.split("\n")
    lines = [("stderr", trace[0]), ("stdout", BEFORE), ("stderr", trace[1]),
             ("stdout", "\tat not.a.Frame(of.stdout)"), ("stderr", trace[2]),
             ("stdout", AFTER)]
    out = joined("java", lines)
    assert sorted(out) == sorted([JAVA_UNCAUGHT, BEFORE, "\tat not.a.Frame(of.stdout)", AFTER])


def test_max_lines_and_max_bytes_cut_a_trace_into_bounded_records() -> None:
    lines = JAVA.split("\n")
    out = joined("java", lines, max_lines=5)
    assert ["\n".join(lines[i:i + 5]) for i in range(0, len(lines), 5)] == out
    out = joined("java", lines, max_bytes=200)
    assert all(len(part.encode()) <= 200 for part in out) and "\n".join(out) == JAVA


def test_the_first_line_of_the_open_trace_holds_the_checkpoint() -> None:
    agg = build(MultilineConfig(preset="python"), [])
    assert agg.add(rec(BEFORE), 0) is None
    assert agg.safe_offset(10) == 0  # an ordinary line waits for the next one
    done = agg.add(rec("Traceback (most recent call last):"), 10)
    assert done is not None and done.body["log"] == BEFORE
    assert agg.add(rec('  File "a.py", line 1, in <module>'), 20) is None
    assert agg.safe_offset(30) == 10


STATIC = parse_path("/var/log/containers/shop_default_app-" + "a" * 64 + ".log",
                    "kube").static_fields()


def test_the_cri_and_docker_decoders_join_with_a_preset() -> None:
    rule = MultilineConfig(preset="java")
    texts = [BEFORE, *JAVA.split("\n"), AFTER]
    cri = CriDecoder("abcd", STATIC, 1 << 20, rule)
    cri_lines = [f"2024-05-01T12:00:00.{i:03d}Z stderr F {t}".encode() for i, t in enumerate(texts)]
    records, end = cri.decode(cri_lines, 0)
    records += cri.flush_events()
    assert [r.body["log"] for r in records] == [BEFORE, JAVA, AFTER]
    docker = DockerDecoder("abcd", STATIC, 1 << 20, rule)
    docker_lines = [orjson.dumps({"log": t + "\n", "stream": "stderr",
                                  "time": f"2024-05-01T12:00:00.{i:03d}Z"})
                    for i, t in enumerate(texts)]
    records, end = docker.decode(docker_lines, 0)
    assert docker.safe_offset(end) == end - len(docker_lines[-1]) - 1  # AFTER still open
    records += docker.flush_events()
    assert [r.body["log"] for r in records] == [BEFORE, JAVA, AFTER]
    assert records[1].doc_id == f"abcd-{len(docker_lines[0]) + 1:x}"  # the first line's


def test_a_trace_split_into_16k_pieces_is_joined_after_the_pieces() -> None:
    rule = MultilineConfig(preset="java")
    dec = CriDecoder("abcd", STATIC, 1 << 20, rule)
    message = "java.lang.IllegalStateException: " + "x" * 40_000
    pieces = [message[i:i + 16384] for i in range(0, len(message), 16384)]
    lines = [f"2024-05-01T12:00:00.1Z stderr P {p}".encode() for p in pieces[:-1]]
    lines.append(f"2024-05-01T12:00:00.1Z stderr F {pieces[-1]}".encode())
    lines.append(b"2024-05-01T12:00:00.2Z stderr F \tat a.B.c(B.java:1)")
    lines.append(b"2024-05-01T12:00:00.3Z stdout F " + AFTER.encode())
    records, _ = dec.decode(lines, 0)
    records += dec.flush_events()
    assert [r.body["log"] for r in records] == [message + "\n\tat a.B.c(B.java:1)", AFTER]


def doc_examples() -> list[tuple[str, list[str], list[str]]]:
    """(preset, input lines, records) of each example in docs/MULTILINE.md."""
    import re
    from pathlib import Path

    page = (Path(__file__).resolve().parents[4] / "docs" / "MULTILINE.md").read_text()
    found = []
    for section in re.split(r"^### ", page, flags=re.M)[1:]:
        name = section.split("`")[1]
        text, records = re.findall(r"```(?:text|json)\n(.*?)\n```", section, re.S)
        found.append((name, text.split("\n"), [orjson.loads(r) for r in records.split("\n")]))
    return found


def test_the_documented_examples_are_what_each_preset_does() -> None:
    examples = doc_examples()
    assert sorted(name for name, _, _ in examples) == sorted(PRESETS)
    for name, lines, records in examples:
        assert joined(name, lines) == records, name
        assert len(records) < len(lines)
