"""Interop with the real Node.js client, ``fluent-logger`` from npm, in every mode it has.

Its modes are Message, PackedForward and CompressedPackedForward, each with and without
``requireAckResponse``; integer or EventTime times; the shared-key handshake with optional
user authentication; TLS with or without a client certificate. The npm package is installed
by the ``node_fluent_logger`` session fixture; without node/npm these tests fail, loudly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shipper.sources.forward.config import ForwardSecurity, ForwardTls, ForwardUser
from tests.integration.sources.forward.conftest import (
    Certs,
    Collector,
    run_node,
    running,
    wait_for,
)

SCRIPT = r"""
const FluentLogger = require('fluent-logger');
const fs = require('fs');
const cfg = __CONFIG__;
const opts = Object.assign({host: '127.0.0.1', port: cfg.port, timeout: 3.0,
  reconnectInterval: 600000, ackResponseTimeout: 10000,
  internalLogger: {info() {}, error(...a) { console.error(...a); }}}, cfg.options);
if (cfg.tls) {
  opts.tls = true;
  opts.tlsOptions = {ca: fs.readFileSync(cfg.tls.ca), servername: 'localhost'};
  if (cfg.tls.cert) {
    opts.tlsOptions.cert = fs.readFileSync(cfg.tls.cert);
    opts.tlsOptions.key = fs.readFileSync(cfg.tls.key);
  }
}
const sender = FluentLogger.createFluentSender('node', opts);
let done = 0;
const errors = [];
sender.on('error', (e) => {
  errors.push(String(e));
  if (String(e).includes('HandshakeError')) {  // refused: the client would retry for ever
    console.log(JSON.stringify({done, errors}));
    process.exit(1);
  }
});
function finish() {
  sender.end(null, null, () => {
    console.log(JSON.stringify({done, errors}));
    process.exit(errors.length ? 1 : 0);
  });
}
function cb(err) { if (err) errors.push(String(err)); if (++done === cfg.n) finish(); }
for (let i = 0; i < cfg.n; i++) {
  const record = {i: i, msg: 'from node', nested: {ok: true}};
  if (cfg.eventTime) sender.emit('evt', record, new FluentLogger.EventTime(1700000000, i), cb);
  else sender.emit('evt', record, cb);
}
setTimeout(() => { console.log(JSON.stringify({done, errors, timeout: true})); process.exit(2); },
           30000);
"""

MODES = [
    ("Message", False, False), ("Message", True, True),
    ("PackedForward", False, True), ("PackedForward", True, False),
    ("CompressedPackedForward", False, False), ("CompressedPackedForward", True, True),
]


async def send(cache: Path, port: int, n: int, options: dict[str, Any],
               event_time: bool = False, tls: dict[str, str] | None = None) -> dict[str, Any]:
    config = {"port": port, "n": n, "options": options, "eventTime": event_time, "tls": tls}
    out = await run_node(cache, SCRIPT.replace("__CONFIG__", json.dumps(config)))
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize(("mode", "ack", "event_time"), MODES)
async def test_every_event_mode(node_fluent_logger: Path, mode: str, ack: bool,
                                event_time: bool) -> None:
    async with running() as srv:
        result = await send(node_fluent_logger, srv.port, 30,
                            {"eventMode": mode, "requireAckResponse": ack}, event_time)
        assert result == {"done": 30, "errors": []}
        await wait_for(lambda: len(srv.collector.records) == 30, what="30 records")
        records = srv.collector.records
        assert sorted(r.body["i"] for r in records) == list(range(30))
        assert {r.tag for r in records} == {"node.evt"}
        assert records[0].body["nested"] == {"ok": True}
        if event_time:
            assert sorted(r.time_ns for r in records)[:2] == [1_700_000_000_000_000_000,
                                                             1_700_000_000_000_000_001]
        if ack:
            assert srv.counter("shipper_forward_acks_total") >= 1
            assert all(r.doc_id for r in records)  # chunk ids → resend-stable ids


async def test_shared_key_and_user_authentication(node_fluent_logger: Path) -> None:
    security = ForwardSecurity(shared_key="s3cret", self_hostname="aggregator",
                               user_auth=True, users=[ForwardUser("app", "pw")])
    async with running(security=security) as srv:
        good = {"eventMode": "PackedForward", "requireAckResponse": True,
                "security": {"clientHostname": "node-client", "sharedKey": "s3cret",
                             "username": "app", "password": "pw"}}
        assert await send(node_fluent_logger, srv.port, 10, good) == {"done": 10, "errors": []}
        await wait_for(lambda: len(srv.collector.records) == 10, what="10 records")

        bad = {**good, "security": {**good["security"], "password": "wrong"}}
        with pytest.raises(AssertionError, match="username/password mismatch"):
            await send(node_fluent_logger, srv.port, 1, bad)
        assert srv.counter("shipper_forward_connections_closed_total", reason="auth_failed") >= 1
        assert len(srv.collector.records) == 10


async def test_tls_with_client_certificate_and_shared_key(node_fluent_logger: Path,
                                                          certs: Certs) -> None:
    tls = ForwardTls(cert_file=str(certs.server_cert), key_file=str(certs.server_key),
                     ca_file=str(certs.ca), client_cert_auth=True)
    security = ForwardSecurity(shared_key="k", self_hostname="aggregator")
    # The client registers its ack listener in the write callback; over TLS an ack that
    # comes back before that callback ran is missed by the client. A real output acks after
    # delivery, milliseconds later, which is what this collector does.
    async with running(Collector(ack_delay=0.05), tls=tls, security=security) as srv:
        options = {"eventMode": "CompressedPackedForward", "requireAckResponse": True,
                   "security": {"clientHostname": "node-client", "sharedKey": "k"}}
        paths = {"ca": str(certs.ca), "cert": str(certs.client_cert),
                 "key": str(certs.client_key)}
        result = await send(node_fluent_logger, srv.port, 20, options, tls=paths)
        assert result == {"done": 20, "errors": []}
        await wait_for(lambda: len(srv.collector.records) == 20, what="20 records")
