"""The token is part of every request URL; it must not appear in anything we produce.

One scenario walks through every path that formats text (accepted, refused token, 400 with
dead letters, 413 split, reset, timeout, unreachable listener, missing token file, token
rotation, config errors) with every logger at DEBUG, then searches all of it: log lines as
the agent writes them, exception texts and tracebacks, metrics, dead-letter files, health
and readiness texts, outcomes and config dumps.
"""

from __future__ import annotations

import logging
import traceback
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from outputs.logzio import LogzioOutput
from outputs.logzio.config import LogzioConfig
from shipper.app import parse_agent_config
from shipper.config.dump import to_plain
from shipper.demo.embedded_es import free_loopback_port
from shipper.errors import ConfigError, OutputCredentialsError
from shipper.logs import JsonFormatter
from tests.integration.outputs.logzio.support import Harness, records
from tests.logzio_listener import Fault, LogzioListener

OLD = "oldTOKENaaaaaaaaaaaaaaaaaaaaaaaaaa"
NEW = "newTOKENbbbbbbbbbbbbbbbbbbbbbbbbbb"
SECRETS = (OLD, NEW)


def texts_of_exception(exc: BaseException) -> list[str]:
    return [str(exc), repr(exc), "".join(traceback.format_exception(exc))]


async def test_no_token_in_logs_metrics_exceptions_dead_letters_or_dumps(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("urllib3", "urllib3.connectionpool", "urllib3.connection", "outputs.logzio",
                 "shipper"):
        caplog.set_level(logging.DEBUG, logger=name)
    captured: list[str] = []
    secret_dir = tmp_path / "secret"
    secret_dir.mkdir()
    token_file = secret_dir / "token"
    token_file.write_text(OLD + "\n")

    with LogzioListener({NEW}, max_line_bytes=3000, max_body_bytes=40_000) as listener:
        h = Harness(listener, tmp_path, token_file=str(token_file), request_timeout_secs=0.5)
        await h.delivery.start_output()
        # 1. The listener does not know OLD: 401, retried at the cap, not ready.
        refused = await h.output.send(h.output.encode(records(3)))
        captured += [repr(refused), str(h.health.problem()), str(h.output.health.snapshot())]
        h.health.record_failure(refused.errors[0].reason, credentials_rejected=True)
        captured.append(str(h.health.problem()))
        # 2. The Secret is rotated to NEW: 400 with dead letters, then a 413 split.
        token_file.write_text(NEW + "\n")
        await h.deliver(records(10) + records(2, size=5000, prefix="big"))
        await h.deliver(records(60, size=1000, prefix="split"))
        # 3. Reset, timeout, and a 502 whose body echoes the request URL.
        listener.script(Fault(reset=True), Fault(delay_secs=2),
                        Fault(status=502,
                              body=f"upstream /?token={NEW}&type=k8s key {NEW}".encode()))
        for _ in range(3):
            captured.append(repr(await h.output.send(h.output.encode(records(2)))))
        assert listener.seen[0].token_valid is False
        assert any(s.token_valid for s in listener.seen)
        assert len(listener.stored) > 60
    # 4. The listener is gone: connection refused.
    captured.append(repr(await h.output.send(h.output.encode(records(2)))))
    await h.output.close()

    # 5. Start without a token file; an unreachable listener; a token pasted into the URL.
    missing = LogzioOutput("lz", LogzioConfig(token_file=str(tmp_path / "nothing")))
    with pytest.raises(OutputCredentialsError) as info:
        await missing.start()
    captured += texts_of_exception(info.value)
    port = free_loopback_port()
    down = LogzioOutput("lz", LogzioConfig(listener=f"https://127.0.0.1:{port}", token=NEW))
    await down.start()
    captured.append(repr(await down.send(down.encode(records(1)))))
    await down.close()
    with pytest.raises(ConfigError) as bad:
        parse_agent_config(
            "sources: {c: {type: tail, include: ['/x/*.log']}}\n"
            f"outputs: {{lz: {{type: logzio, listener: 'https://h:8071/?token={NEW}', "
            f"token: '{NEW} bad'}}}}\n", file="shipper.yaml")
    captured += texts_of_exception(bad.value)
    config = parse_agent_config(
        "sources: {c: {type: tail, include: ['/x/*.log']}}\n"
        "outputs: {lz: {type: logzio, token: '${LOGZIO_TOKEN}'}}\n", file="shipper.yaml",
        environ={"LOGZIO_TOKEN": NEW})
    captured += [repr(config), str(to_plain(config)), repr(config.outputs["lz"])]

    formatter = JsonFormatter()
    log_lines = [formatter.format(record) for record in caplog.records]
    captured += log_lines
    captured.append(generate_latest(h.metrics.registry).decode())
    captured += h.dead_letter_lines()
    captured += [str(h.output.health.snapshot()), str(h.health.problem()), repr(h.output),
                 repr(h.output.config)]

    # The scenario really went through the paths that could leak:
    assert any("token=<hidden>" in line for line in log_lines)  # urllib3's request lines
    assert any("Logging token is not valid" in line for line in log_lines)
    assert any("reloaded the Logz.io token" in line for line in log_lines)
    assert len(h.dead_letter_lines()) == 12  # the whole request of the 400
    assert any("timeout" in text for text in captured)
    assert any("connection_error" in text for text in captured)
    everything = "\n".join(captured)
    for secret in SECRETS:
        assert secret not in everything
