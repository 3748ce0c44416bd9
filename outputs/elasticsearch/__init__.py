"""The ``elasticsearch`` output: bulk indexing into Elasticsearch 7-9 or OpenSearch 1-3.

Glue only: ``request`` builds bodies, ``response`` classifies answers, ``health`` detects the
server and holds readiness. Requests go through ``elastic_transport`` (node pool, TLS,
keep-alive) but not through elasticsearch-py, whose compatibility media types OpenSearch and
older servers refuse (spec §1.9): we send plain ``application/x-ndjson`` / ``application/json``.
The transport never retries (``max_retries=0``): only delivery retries, and only what failed.

``send`` makes one attempt per request body and never raises for a failed request: every
failure becomes RETRY or REJECTED statuses. The one exception to "one attempt" is a 413, which
indexed nothing: the body is halved and each half sent, recursively, within the same call.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import socket
import ssl
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import urlsplit

import orjson
from elastic_transport import (
    ConnectionTimeout,
    NodeConfig,
    Serializer,
    Transport,
    TransportError,
)

from outputs.elasticsearch.bodies import BodyBuffers
from outputs.elasticsearch.config import ElasticsearchConfig
from outputs.elasticsearch.health import (
    ASSUMED_SERVER,
    Health,
    ServerInfo,
    index_pattern,
    parse_root,
    template_request,
)
from outputs.elasticsearch.request import BulkEncoder, body_spans, decode_payload, join_body
from outputs.elasticsearch.response import (
    classify,
    merge_outcomes,
    needs_split,
    parse_retry_after,
)
from shipper.blocking import DaemonThreads
from shipper.errors import (
    TLS_ERROR_TYPE,
    OutputCredentialsError,
    OutputPermanentError,
    OutputRetryableError,
    OutputTLSError,
    StorageError,
    tls_verify_failure,
)
from shipper.metrics import Metrics
from shipper.protocols import ItemError, Outcome, Status
from shipper.record import Record
from shipper.secrets import SecretFile

__all__ = ["ElasticsearchConfig", "ElasticsearchOutput", "Health", "ServerInfo"]

# Only what classification needs: a response for 10k items shrinks from ~2 MB to ~250 kB.
# Understood by Elasticsearch 7-9 and OpenSearch 1-3.
BULK_PATH = "/_bulk?filter_path=errors,items.*.status,items.*.error"
log = logging.getLogger(__name__)
# elastic_transport writes every request body to this logger when it has a handler.
_TRANSPORT_REQUEST_LOG = logging.getLogger("elastic_transport.node")

USER_AGENT = "shipper"
NDJSON = "application/x-ndjson"
#: ``close`` gives up on the transport after this long (the agent is stopping).
CLOSE_TIMEOUT_SECS = 1.0
JSON = "application/json"


class _RawSerializer(Serializer):
    """Hands response bodies back as bytes: ``response.classify`` parses them itself, and a
    proxy's HTML error page must become a classified failure, not a SerializationError."""

    mimetype: ClassVar[str] = JSON

    def loads(self, data: bytes) -> Any:
        return data

    def dumps(self, data: Any) -> bytes:
        if isinstance(data, bytes | memoryview):  # bulk bodies come as views of a buffer
            return data  # type: ignore[return-value]
        return orjson.dumps(data)


_RAW = _RawSerializer()
_SERIALIZERS: Mapping[str, Serializer] = {
    JSON: _RAW, NDJSON: _RAW, "application/*": _RAW, "text/*": _RAW}


def auth_headers(config: ElasticsearchConfig, password: str | None = None,
                 api_key: str | None = None) -> dict[str, str]:
    """``Authorization`` for basic auth or an API key (``id:key`` is encoded, else used as is).

    ``password``/``api_key`` override the config's literal values (read from secret files).
    """
    key = api_key if api_key is not None else config.api_key
    if key:
        if ":" in key:
            key = base64.b64encode(key.encode()).decode("ascii")
        return {"authorization": f"ApiKey {key}"}
    if config.user is not None:
        secret = password if password is not None else config.password
        token = base64.b64encode(f"{config.user}:{secret or ''}".encode()).decode()
        return {"authorization": f"Basic {token}"}
    return {}


def _default_ca_file() -> str | None:
    """The bundle the transport verifies with when no ``ca_file`` is set (certifi's)."""
    try:
        import certifi
    except ImportError:
        return None
    return str(certifi.where())


def node_configs(config: ElasticsearchConfig) -> list[NodeConfig]:
    """One NodeConfig per host URL; TLS settings apply to https hosts only."""
    headers = {"user-agent": USER_AGENT}
    if config.gzip:
        headers["accept-encoding"] = "gzip"
    nodes = []
    for url in config.hosts:
        parts = urlsplit(url)
        https = parts.scheme == "https"
        tls: dict[str, Any] = {}
        if https:
            tls = {"verify_certs": config.verify_certs, "ca_certs": config.ca_file,
                   "client_cert": config.client_cert, "client_key": config.client_key,
                   "ssl_show_warn": False}
        nodes.append(NodeConfig(
            scheme=parts.scheme, host=parts.hostname or "",
            port=parts.port or (443 if https else 9200),
            path_prefix=parts.path.rstrip("/"), headers=headers,
            request_timeout=config.request_timeout_secs, **tls))
    return nodes


class ElasticsearchOutput:
    """Implements ``shipper.protocols.Output``; ``health`` holds readiness for ``/readyz``.

    ``metrics`` is accepted for the common output signature; requests and records are counted
    by delivery, from the Outcome, so nothing is counted twice. ``transport`` replaces the
    HTTP transport (tests).
    """

    #: Dead-letter reasons (error types) exported at zero from the start: the usual mapping
    #: refusals and our own; any other type the server sends appears with its first record.
    DEAD_LETTER_REASONS = ("mapper_parsing_exception", "document_parsing_exception",
                           "illegal_argument_exception", "strict_dynamic_mapping_exception",
                           "index_not_found_exception", "payload_too_large")

    def __init__(self, name: str, config: ElasticsearchConfig,
                 metrics: Metrics | None = None, *, transport: Transport | None = None) -> None:
        self.name = name
        self.config = config
        self.health = Health()
        self._metrics = metrics
        self._encoder = BulkEncoder(config)
        self._bodies = BodyBuffers()
        self._transport = transport
        self._password_file = SecretFile(config.password_file) if config.password_file else None
        self._api_key_file = SecretFile(config.api_key_file) if config.api_key_file else None
        # Requests run in daemon threads: one the server never answers must not hold the
        # process past its shutdown deadline (an abandoned request's chunk stays unsettled).
        self._io = DaemonThreads(f"es-{name}")

    # -- Output protocol -----------------------------------------------------------------

    def encode(self, records: Sequence[Record]) -> list[bytes]:
        return self._encoder.encode(records)

    async def start(self) -> None:
        """Detect the server and install the template. Raises OutputRetryableError while the
        server cannot be reached or answers 401/5xx, OutputPermanentError on a misconfiguration
        that retrying cannot fix."""
        self._ensure_transport()
        if not self.config.verify_certs and any(h.startswith("https:") for h in self.config.hosts):
            log.warning("output %s: TLS certificate verification is disabled (verify_certs: "
                        "false); the connection can be intercepted", self.name,
                        extra={"event": "es_tls_unverified", "output": self.name})
        info = await self._detect()
        if info.product == "elasticsearch" and info.version[0] < 7:
            raise OutputPermanentError(
                f"output {self.name}: {info} is not supported (Elasticsearch 7 or newer)")
        self.health.server = info
        if self.config.install_template:
            await self._install_template(info)
        self.health.started = True
        log.info("output %s: connected to %s", self.name, info,
                 extra={"event": "es_connected", "output": self.name})

    async def send(self, payloads: Sequence[bytes]) -> Outcome:
        if not payloads:
            return Outcome([])
        parts: list[Outcome] = []
        for start, end in body_spans(payloads, self.config.max_request_bytes):
            run = payloads[start:end]
            async with self._bodies.body(run, self.config.gzip) as body:
                outcome = await self._send_body(run, body)
            parts.append(outcome)
            if outcome.http_status is None and end < len(payloads):
                # The cluster is unreachable: the rest would fail the same way, slowly.
                error = next(iter(outcome.errors.values()))
                parts.append(Outcome.all(len(payloads) - end, Status.RETRY, error))
                break
        return merge_outcomes(parts)

    def describe(self, payload: bytes) -> dict[str, Any]:
        return decode_payload(payload)

    async def close(self) -> None:
        if self._transport is not None:
            transport, self._transport = self._transport, None
            # Closing only drops idle connections; bounded all the same, as shutdown is.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._io.run(transport.close), CLOSE_TIMEOUT_SECS)
        self._io.shutdown()

    # -- internals -----------------------------------------------------------------------

    def _ensure_transport(self) -> Transport:
        if self._transport is None:
            try:
                self._transport = Transport(
                    node_configs(self.config), node_class="urllib3", serializers=_SERIALIZERS,
                    default_mimetype=JSON, max_retries=0, retry_on_timeout=False,
                    meta_header=False)
            except (ValueError, OSError) as exc:  # unreadable CA/cert files, bad host
                raise OutputPermanentError(
                    f"output {self.name}: cannot set up connections: {exc}") from exc
        return self._transport

    async def _request(self, method: str, path: str, body: bytes | memoryview | None = None,
                       headers: Mapping[str, str] | None = None,
                       ) -> tuple[int, Mapping[str, str], bytes]:
        transport = self._ensure_transport()
        if isinstance(body, memoryview) and _TRANSPORT_REQUEST_LOG.hasHandlers():
            body = bytes(body)  # the transport's request log calls ``body.decode()``
        resp = await self._io.run(
            transport.perform_request, method, path, body=body,
            headers={"accept": JSON, **self._auth(), **(headers or {})},
            request_timeout=self.config.request_timeout_secs)
        raw = resp.body if isinstance(resp.body, bytes) else b""
        return resp.meta.status, resp.meta.headers, raw

    async def _send_body(self, payloads: Sequence[bytes], body: bytes | memoryview) -> Outcome:
        """One bulk request; on 413 split in halves and send each (nothing was indexed)."""
        outcome = await self._bulk(body, len(payloads))
        if not needs_split(outcome):
            return outcome
        mid = len(payloads) // 2
        log.warning("output %s: request of %d records too large (413); splitting",
                    self.name, len(payloads),
                    extra={"event": "es_request_split", "output": self.name})
        left = await self._send_body(payloads[:mid], self._join(payloads[:mid]))
        if left.http_status is None:  # unreachable now: do not try the other half
            error = next(iter(left.errors.values()))
            return merge_outcomes(
                [left, Outcome.all(len(payloads) - mid, Status.RETRY, error)])
        right = await self._send_body(payloads[mid:], self._join(payloads[mid:]))
        return merge_outcomes([left, right])

    def _auth(self) -> dict[str, str]:
        """Credentials for this request; secret files are re-read when they change."""
        try:
            password = self._password_file.value() if self._password_file else None
            api_key = self._api_key_file.value() if self._api_key_file else None
        except StorageError as exc:
            raise OutputRetryableError(f"output {self.name}: {exc}") from exc
        return auth_headers(self.config, password, api_key)

    def _join(self, payloads: Sequence[bytes]) -> bytes:
        return join_body(payloads, self.config.gzip)

    async def _bulk(self, body: bytes | memoryview, n: int) -> Outcome:
        headers = {"content-type": NDJSON}
        if self.config.gzip:
            headers["content-encoding"] = "gzip"
        try:
            status, resp_headers, raw = await self._request("POST", BULK_PATH, body, headers)
        except (TransportError, OSError) as exc:
            tls = tls_verify_failure(exc)
            if tls is not None:
                where = await self._io.run(self._tls_failing_hosts)
                error = ItemError(0, TLS_ERROR_TYPE, f"{tls} ({where})")
            else:
                kind = "timeout" if isinstance(exc, ConnectionTimeout) else "connection_error"
                error = ItemError(0, kind, str(exc))
            outcome = Outcome.all(n, Status.RETRY, error)
        except OutputRetryableError as exc:  # e.g. a secret file that cannot be read now
            outcome = Outcome.all(n, Status.RETRY, ItemError(0, "credentials_unavailable",
                                                             str(exc)))
        else:
            outcome = classify(status, raw, n, resp_headers)
        self.health.observe(outcome)
        if outcome.http_status in (401, 403):
            log.error("output %s: credentials rejected (%s); records are kept and retried",
                      self.name, outcome.http_status,
                      extra={"event": "es_credentials_rejected", "output": self.name})
        return outcome

    async def _raise_if_tls(self, exc: BaseException) -> None:
        """Raise OutputTLSError (not ready at once) when ``exc`` is a refused certificate."""
        tls = tls_verify_failure(exc)
        if tls is None:
            return
        where = await self._io.run(self._tls_failing_hosts)
        self.health.tls_problem = f"{tls} ({where})"
        raise OutputTLSError(f"output {self.name}: {tls} ({where})") from exc

    def _tls_failing_hosts(self) -> str:
        """Which ``hosts`` refused verification, as ``hosts[i] URL`` (blocking).

        The transport's error does not say which node it was; with one https host it is that
        one, with several each is asked for a handshake with the same trust settings.
        """
        https = [(i, url) for i, url in enumerate(self.config.hosts) if url.startswith("https:")]
        if len(https) > 1:
            failing = [(i, url) for i, url in https if not self._handshake_verifies(url)]
            https = failing or https
        return ", ".join(f"hosts[{i}] {url}" for i, url in https)

    def _handshake_verifies(self, url: str) -> bool:
        """False when a TLS handshake with ``url`` fails certificate verification."""
        cfg = self.config
        try:
            context = ssl.create_default_context(cafile=cfg.ca_file or _default_ca_file())
            if cfg.client_cert:
                context.load_cert_chain(cfg.client_cert, cfg.client_key)
        except (OSError, ssl.SSLError):
            return True  # the transport would have failed to start: not this question
        parts = urlsplit(url)
        host = parts.hostname or ""
        try:
            with socket.create_connection((host, parts.port or 443),
                                          timeout=min(5.0, cfg.request_timeout_secs)) as sock, \
                    context.wrap_socket(sock, server_hostname=host):
                return True
        except ssl.SSLCertVerificationError:
            return False
        except OSError:
            return True

    async def _detect(self) -> ServerInfo:
        try:
            status, headers, raw = await self._request("GET", "/")
        except (TransportError, OSError) as exc:
            await self._raise_if_tls(exc)
            raise OutputRetryableError(
                f"output {self.name}: cannot reach {', '.join(self.config.hosts)}: {exc}"
            ) from exc
        if status == 401:
            self.health.credentials_rejected = True
            raise OutputCredentialsError(f"output {self.name}: credentials rejected (401)")
        if status == 403:
            # A restricted key may index without seeing GET /: assume a current Elasticsearch.
            log.warning("output %s: GET / is forbidden (403); assuming %s", self.name,
                        ASSUMED_SERVER, extra={"event": "es_root_forbidden", "output": self.name})
            return ASSUMED_SERVER
        if not 200 <= status < 300:
            raise OutputRetryableError(
                f"output {self.name}: GET / answered HTTP {status}",
                parse_retry_after(headers.get("retry-after")))
        self.health.credentials_rejected = False
        self.health.tls_problem = None
        try:
            return parse_root(raw)
        except ValueError as exc:
            raise OutputPermanentError(
                f"output {self.name}: {', '.join(self.config.hosts)} is not Elasticsearch "
                f"or OpenSearch: {exc}") from exc

    async def _install_template(self, info: ServerInfo) -> None:
        cfg = self.config
        pattern = index_pattern(cfg.logstash_format, cfg.logstash_prefix,
                                cfg.logstash_prefix_separator, cfg.index)
        path, body = template_request(info, cfg.template_name, pattern, cfg.ilm_policy)
        try:
            status, headers, raw = await self._request(
                "PUT", path, orjson.dumps(body), {"content-type": JSON})
        except (TransportError, OSError) as exc:
            await self._raise_if_tls(exc)
            raise OutputRetryableError(
                f"output {self.name}: cannot install template {cfg.template_name}: {exc}"
            ) from exc
        if 200 <= status < 300:
            log.info("output %s: installed template %s for %s", self.name, path, pattern,
                     extra={"event": "es_template_installed", "output": self.name})
            return
        detail = raw[:500].decode("utf-8", "replace")
        if status == 403:
            log.warning("output %s: not allowed to install template %s (403); indexing with "
                        "the templates already on the server: %s", self.name, path, detail,
                        extra={"event": "es_template_forbidden", "output": self.name})
            return
        if status == 401:
            self.health.credentials_rejected = True
            raise OutputCredentialsError(
                f"output {self.name}: credentials rejected installing template {path} (401)")
        if status == 429 or status >= 500:
            raise OutputRetryableError(
                f"output {self.name}: template {path} answered HTTP {status}: {detail}",
                parse_retry_after(headers.get("retry-after")))
        raise OutputPermanentError(
            f"output {self.name}: template {path} refused (HTTP {status}): {detail}")
