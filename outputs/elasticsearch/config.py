"""Settings of the ``elasticsearch`` output (spec §1; names follow fluent-plugin-elasticsearch).

Validation is pure: per-field ``check`` functions in the field metadata, plus ``validate()``
for rules that involve several fields. Building the output does the I/O.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from shipper.buffer.config import MIB, BufferConfig
from shipper.config import checks
from shipper.config.types import Bytes, Seconds

DEFAULT_HOST = "http://127.0.0.1:9200"


def _check_hosts(hosts: list[str]) -> str | None:
    if not hosts:
        return "at least one host is required"
    for host in hosts:
        try:
            parts = urlsplit(host)
            _ = parts.port  # raises ValueError on a malformed port
        except ValueError as exc:
            return f"{host!r} is not a valid URL: {exc}"
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return f"{host!r} must be a URL like http://elasticsearch:9200"
        if parts.username or parts.password:
            return f"{host!r} carries credentials; use user/password or api_key instead"
        if parts.query or parts.fragment:
            return f"{host!r} must not have a query or fragment"
    return None


def _check_dateformat(fmt: str) -> str | None:
    try:
        sample = time.strftime(fmt, time.gmtime(0))
    except ValueError as exc:
        return f"invalid strftime format: {exc}"
    if not sample:
        return "must not be empty"
    return None


def _check_template_name(name: str) -> str | None:
    if not name or any(c in name for c in ' /\\*?"<>|,#'):
        return "must be a non-empty name without spaces or any of / \\ * ? \" < > | , #"
    return None


@dataclass(frozen=True)
class ElasticsearchConfig:
    """Where and how records are indexed into Elasticsearch or OpenSearch."""

    type: Literal["elasticsearch"] = field(default="elasticsearch", metadata={
        "doc": "Output type; also works with OpenSearch 1-3 (detected at start)."})
    hosts: list[str] = field(default_factory=lambda: [DEFAULT_HOST], metadata={
        "doc": "Base URLs of the cluster's nodes (an optional path is kept as a prefix, for "
               "proxies). Without a port, http uses 9200 and https 443. Requests rotate over "
               "them and skip nodes that failed recently.",
        "check": _check_hosts})
    logstash_format: bool = field(default=True, metadata={
        "doc": "Write to daily indices <logstash_prefix><separator><date>, like Fluentd. When "
               "false every record goes to `index`."})
    logstash_prefix: str = field(default="logstash", metadata={
        "doc": "Index name prefix with logstash_format (lower-cased, as Elasticsearch requires)."})
    logstash_prefix_separator: str = field(default="-", metadata={
        "doc": "Between the prefix and the date."})
    logstash_dateformat: str = field(default="%Y.%m.%d", metadata={
        "doc": "strftime format of the index date, computed in UTC from the record time.",
        "check": _check_dateformat})
    index: str | None = field(default=None, metadata={
        "doc": "Fixed index name; required when logstash_format is false."})
    user: str | None = field(default=None, metadata={
        "doc": "Basic-auth user name."})
    password: str | None = field(default=None, repr=False, metadata={
        "doc": "Basic-auth password (use ${ENV_VAR}).", "secret": True})
    api_key: str | None = field(default=None, repr=False, metadata={
        "doc": "API key: either 'id:key' (encoded for you) or the already base64-encoded value "
               "that POST /_security/api_key returns as `encoded`.", "secret": True})
    password_file: str | None = field(default=None, metadata={
        "doc": "File holding the password (a mounted Kubernetes Secret); re-read when it "
               "changes, so rotating the Secret needs no restart."})
    api_key_file: str | None = field(default=None, metadata={
        "doc": "File holding the API key (same forms as api_key); re-read when it changes."})
    ca_file: str | None = field(default=None, metadata={
        "doc": "PEM file of the CA that signed the server certificates (default: system/certifi)."})
    verify_certs: bool = field(default=True, metadata={
        "doc": "Verify server certificates. Turning this off is insecure and logged as a warning."})
    client_cert: str | None = field(default=None, metadata={
        "doc": "PEM client certificate for mutual TLS."})
    client_key: str | None = field(default=None, metadata={
        "doc": "PEM private key of client_cert."})
    gzip: bool = field(default=False, metadata={
        "doc": "Compress request bodies (Content-Encoding: gzip). Saves bandwidth for CPU."})
    request_timeout_secs: Seconds = field(default=60.0, metadata={
        "doc": "Give up on one request after this long; the records are retried.",
        "check": checks.positive})
    template_name: str = field(default="shipper-logstash", metadata={
        "doc": "Name of the index template installed at start.",
        "check": _check_template_name})
    install_template: bool = field(default=True, metadata={
        "doc": "Install (overwrite) the index template at start so Kubernetes labels never "
               "cause mapping conflicts. Turn off if you manage templates yourself."})
    ilm_policy: str | None = field(default=None, metadata={
        "doc": "Elasticsearch only: ILM policy name put in the template as index.lifecycle.name "
               "(the policy must exist). Never sent to OpenSearch, which rejects it."})
    id_key: str | None = field(default=None, metadata={
        "doc": "Record field whose value becomes the document _id instead of the id derived from "
               "the record's origin (file and offset)."})
    write_operation: Literal["create", "index"] = field(default="create", metadata={
        "doc": "create: a resent record answers 409 and counts as delivered, never duplicated "
               "(required by data streams). index: a resent record overwrites the stored one."})
    max_request_bytes: Bytes = field(default=10 * MIB, metadata={
        "doc": "Split a chunk so that no request body exceeds this (measured before gzip).",
        "check": checks.positive})
    match: str = field(default="**", metadata={
        "doc": "Tag pattern of the records this output receives (Fluentd match syntax)."})
    buffer: BufferConfig = field(default_factory=BufferConfig, metadata={
        "doc": "How records are buffered before delivery."})

    def validate(self) -> list[str]:
        """Problems that involve several fields, each as ``"<key>: <message>"``."""
        problems: list[str] = []
        if not self.logstash_format and not self.index:
            problems.append("index: required when logstash_format is false")
        if self.index is not None and (
                not self.index or self.index.startswith(("-", "_", "+"))
                or any(c in self.index for c in ' /\\*?"<>|,#:')):
            problems.append(f"index: {self.index!r} is not a valid index name")
        password = self.password is not None or self.password_file is not None
        api_key = self.api_key is not None or self.api_key_file is not None
        if self.password is not None and self.password_file is not None:
            problems.append("password_file: use either password or password_file, not both")
        if self.api_key is not None and self.api_key_file is not None:
            problems.append("api_key_file: use either api_key or api_key_file, not both")
        if password and self.user is None:
            problems.append("password: set user too")
        if self.user is not None and api_key:
            problems.append("api_key: use either user/password or api_key, not both")
        if self.client_key is not None and self.client_cert is None:
            problems.append("client_key: set client_cert too")
        if self.ilm_policy is not None and not self.install_template:
            problems.append("ilm_policy: only applied through the template; "
                            "set install_template: true")
        return problems
