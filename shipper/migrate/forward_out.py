"""``@type forward`` output (out_forward) -> the ``forward`` output.

The names are Fluentd's with unit suffixes, so this is mostly renaming: ``<server>`` entries,
``<security>`` (its literal ``shared_key``/``password`` move to environment variables), the
``transport tls`` options of out_forward (``tls_cert_path`` is the CA that server
certificates must chain to). Failure detection (phi accrual, DNS caching) is shipper's own
and only noted.
"""

from __future__ import annotations

from typing import Any

from outputs.forward.config import ForwardOutputConfig
from shipper.migrate.reader import Conversion, SectionReader

_FORWARD = ForwardOutputConfig()
_AUTOMATIC = ("phi_threshold", "phi_failure_detector", "hard_timeout", "expire_dns_cache",
              "dns_round_robin", "send_timeout", "ignore_network_errors_at_startup",
              "verify_connection_at_startup", "tls_version", "tls_ciphers",
              "tls_allow_self_signed_cert")
_SECONDS = (("ack_response_timeout", "ack_response_timeout_secs",
             _FORWARD.ack_response_timeout_secs),
            ("connect_timeout", "connect_timeout_secs", _FORWARD.connect_timeout_secs),
            ("keepalive_timeout", "keepalive_timeout_secs", _FORWARD.keepalive_timeout_secs),
            ("heartbeat_interval", "heartbeat_interval_secs", _FORWARD.heartbeat_interval_secs),
            ("recover_wait", "recover_wait_secs", _FORWARD.recover_wait_secs))


def convert_forward(r: SectionReader, pattern: str, conv: Conversion) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "forward", "match": pattern}
    servers = []
    for server in r.section.all_children("server"):
        s = SectionReader(server, conv)
        entry: dict[str, Any] = {"host": s.text("host") or ""}
        port = s.integer("port", default=24224)
        if port is not None:
            entry["port"] = port
        weight = s.integer("weight", default=60)
        if weight is not None:
            entry["weight"] = weight
        standby = s.boolean("standby")
        if standby is not None:
            entry["standby"] = standby
        s.skip(("name",), "servers are named host:port in metrics and logs")
        servers.append(entry)
        s.finish("a forward server")
    body["servers"] = servers
    if not servers:
        r.warn(r.section, "forward output without <server>: add servers by hand")
    ack = r.boolean("require_ack_response")
    if ack is not None:
        body["require_ack_response"] = ack
    else:
        r.note(r.section, "require_ack_response: Fluentd's default is off (a chunk counts once "
                          "written to the socket); shipper asks for acks and resends until "
                          "acknowledged")
    for fluent, ours, default in _SECONDS:
        value = r.seconds(fluent, default=default)
        if value is not None:
            body[ours] = value
    for key in ("time_as_integer", "keepalive"):
        value = r.boolean(key)
        if value is not None:
            body[key] = value
    compress = r.literal("compress")
    if compress is not None:
        body["compress"] = "gzip" if compress == "gzip" else "text"
    heartbeat = r.literal("heartbeat_type")
    if heartbeat is not None:
        body["heartbeat_type"] = {"tcp": "transport"}.get(heartbeat, heartbeat)
    _security(r, body, conv)
    _tls(r, body)
    r.skip(_AUTOMATIC, "shipper's failure detection and TLS defaults (1.2+) apply")
    return body


def _security(r: SectionReader, body: dict[str, Any], conv: Conversion) -> None:
    section = r.section.child("security")
    if section is None:
        return
    s = SectionReader(section, conv)
    key = s.secret("shared_key", "FORWARD_SHARED_KEY", "forward output shared_key")
    if key is not None:
        body["shared_key"] = key
    for name in ("self_hostname", "username"):
        value = s.text(name)
        if value is not None:
            body[name] = value
    password = s.secret("password", "FORWARD_PASSWORD", "forward output password")
    if password is not None:
        body["password"] = password
    s.finish("the forward output")


def _tls(r: SectionReader, body: dict[str, Any]) -> None:
    transport = r.literal("transport")
    if transport != "tls":
        if transport not in (None, "tcp"):
            r.warn(r.section.params["transport"], f"transport {transport}: only tcp and tls")
        return
    tls: dict[str, Any] = {}
    cas = r.strings("tls_cert_path")
    if cas:
        tls["ca_file"] = cas[0]
        if len(cas) > 1:
            r.warn(r.section.params["tls_cert_path"], "tls_cert_path: only the first CA file "
                                                      "is used; put them in one bundle")
    verify = r.boolean("tls_verify_hostname")
    insecure = r.boolean("tls_insecure_mode")
    if verify is False or insecure is True:
        tls["verify"] = False
    for fluent, ours in (("tls_client_cert_path", "cert_file"),
                         ("tls_client_private_key_path", "key_file")):
        value = r.text(fluent)
        if value is not None:
            tls[ours] = value
    body["tls"] = tls
