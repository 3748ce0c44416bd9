"""``@type elasticsearch`` (fluent-plugin-elasticsearch; also ``opensearch``) -> the
``elasticsearch`` output.

Names mostly carry over (``logstash_prefix``, ``id_key``...). The differences:

- ``host``/``port``/``scheme``/``path`` (or ``hosts``) become one list of URLs; user info in
  a URL moves to ``user``/``password``.
- Fluentd's ``logstash_format`` defaults to false (index ``fluentd``); shipper's to true, so
  the converted output always says which one applies.
- A literal ``password`` or ``api_key`` moves to an environment variable.
- ``template_file`` means the operator manages the template: ``install_template: false``.
- Connection handling (sniffing, reload, version checks, type names, 400 logging) is automatic
  in shipper and only noted.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from outputs.elasticsearch.config import ElasticsearchConfig
from shipper.migrate.model import Param, Value
from shipper.migrate.reader import SectionReader
from shipper.migrate.routing import overlap

_ES = ElasticsearchConfig()
# index_name <prefix><separator><strftime date>: the separator is one of - _ . and the
# date only %Y %m %d %H %j %U %W %y directives and separators.
_DATED_INDEX = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]*?)([-_.])((?:%[YmdHjUWy]|[-_.])+)$")
_AUTOMATIC = {
    "product and version are detected at start; no type names are sent": (
        "type_name", "suppress_type_name", "verify_es_version_at_startup",
        "default_elasticsearch_version", "fail_on_detecting_es_version_retry_exceed",
        "validate_client_version", "use_legacy_template", "content_type", "http_backend",
        "prefer_oj_serializer", "application_name", "with_transporter_log",
        "include_index_in_url", "enable_ipv6"),
    "the TLS version is negotiated: TLS 1.2 or newer (a server that only speaks an older "
    "version is refused)": ("ssl_version", "ssl_min_version", "ssl_max_version"),
    "requests rotate over the hosts and skip nodes that failed recently": (
        "reload_connections", "reload_on_failure", "reconnect_on_error", "reload_after",
        "resurrect_after", "sniffer_class_name", "selector_class_name"),
    "rejected records go to the dead-letter store with the reason": (
        "log_es_400_reason", "emit_error_for_missing_id", "unrecoverable_error_types",
        "exception_backup", "unrecoverable_record_types"),
    "records carry @timestamp and the index date is computed in UTC": (
        "include_timestamp", "utc_index", "time_key_format", "time_precision"),
    "chunks are split so no request exceeds max_request_bytes": (
        "bulk_message_request_threshold",),
}


def convert_elasticsearch(r: SectionReader, pattern: str) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "elasticsearch", "match": pattern}
    body["hosts"] = _hosts(r, body)
    _credentials(r, body)
    _index(r, body)
    for fluent, ours in (("ca_file", "ca_file"), ("client_cert", "client_cert"),
                         ("client_key", "client_key")):
        value = r.text(fluent, optional=True)
        if value is not None:
            body[ours] = value
    verify = r.boolean("ssl_verify", default=_ES.verify_certs)
    if verify is not None:
        body["verify_certs"] = verify
    compression = r.literal("compression_level")
    if compression is not None and compression != "no_compression":
        body["gzip"] = True
    timeout = r.seconds("request_timeout", default=_ES.request_timeout_secs)
    if timeout is not None:
        body["request_timeout_secs"] = timeout
    id_key = r.text("id_key")
    if id_key is not None:
        body["id_key"] = id_key
    operation = r.param("write_operation")
    if operation is not None:
        kind = operation.value.assumed().strip()
        if kind in ("create", "index"):
            body["write_operation"] = kind
        else:
            r.warn(operation, f"write_operation {kind}: shipper supports create and index")
    _template(r, body)
    _tag_key(r, pattern)
    for why, keys in _AUTOMATIC.items():
        r.skip(keys, why)
    return body


_LEGACY_HOST = re.compile(r"^[^:]+(:\d+)?$")
_URL_DEFAULT_PORTS = {"http": 80, "https": 443}


def _hosts(r: SectionReader, body: dict[str, Any]) -> list[str]:
    hosts = r.param("hosts")
    scheme = r.param("scheme")
    default_scheme = (scheme.value.assumed().strip() if scheme is not None else "") or "http"
    if hosts is not None and hosts.value.literal is not None:
        items = [h.strip() for h in hosts.value.literal.split(",") if h.strip()]
        # As the plugin reads hosts: "name" or "name:port" takes scheme and port (default
        # 9200); a URL keeps its own, its scheme's default port when it names none.
        legacy = [item for item in items if _LEGACY_HOST.match(item)]
        if legacy:
            r.skip(("host", "path"), "hosts is set, which wins in Fluentd too")
            port_param = r.param("port")
            port = (r.render(port_param) if port_param is not None else None) or "9200"
            scheme_text = (r.render(scheme) if scheme is not None else None) or default_scheme
        else:
            r.skip(("host", "port", "path", "scheme"), "hosts lists URLs, which wins in "
                                                       "Fluentd too")
            port, scheme_text = "9200", default_scheme
        urls = []
        seen: dict[tuple[str | None, str | None], str] = {}
        for item in items:
            if item in legacy:
                name, _, own_port = item.partition(":")
                url = f"{scheme_text}://{name}:{own_port or port}"
                seen[(None, None)] = item
            else:
                url = item if "://" in item else f"{default_scheme}://{item}"
                split = urlsplit(url)
                try:
                    has_port = split.port is not None
                except ValueError:
                    has_port = True  # left as written; the agent's check reports it
                default_port = _URL_DEFAULT_PORTS.get(split.scheme)
                if not has_port and default_port is not None and split.hostname:
                    url = split._replace(netloc=f"{split.netloc}:{default_port}").geturl()
                split = urlsplit(url)
                seen[(split.username, split.password)] = item
            urls.append(_without_credentials(r, hosts, url, body))
        if len(seen) > 1 and any(user or password for user, password in seen):
            r.warn(hosts, "hosts: the URLs carry different credentials; shipper uses one "
                          "user and password for every host of an output, so the last "
                          "ones were kept: split the hosts into one output each")
        return urls
    if hosts is not None:
        rendered = r.render(hosts)
        r.skip(("host", "port", "path", "scheme"), "hosts is set, which wins in Fluentd too")
        return [rendered] if rendered is not None else [f"{default_scheme}://localhost:9200"]
    parts = []
    for key, fallback, optional in (("scheme", "http", False), ("host", "localhost", False),
                                    ("port", "9200", False), ("path", "", True)):
        param = r.param(key)
        text = r.render(param, optional=optional) if param is not None else None
        parts.append(fallback if text is None else text)
    scheme_text, host, port, path = parts
    if path and not path.startswith(("/", "$")):
        path = "/" + path
    return [f"{scheme_text}://{host}:{port}{path.rstrip('/') if path != '/' else ''}"]


def _without_credentials(r: SectionReader, param: Param, url: str,
                         body: dict[str, Any]) -> str:
    """Move ``user:password@`` out of a URL into ``user``/``password``."""
    parts = urlsplit(url)
    if not (parts.username or parts.password):
        return url
    if parts.username:
        body["user"] = parts.username
    if parts.password:
        value = Value.of(parts.password)
        body["password"] = r.secret_value(param, value, "ES_PASSWORD",
                                          "elasticsearch password (in hosts)")
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return parts._replace(netloc=netloc).geturl()


def _credentials(r: SectionReader, body: dict[str, Any]) -> None:
    user = r.text("user", optional=True)
    if user is not None:
        body["user"] = user
    password = r.secret("password", "ES_PASSWORD", "elasticsearch password")
    if password is not None:
        body["password"] = password
    api_key = r.secret("api_key", "ES_API_KEY", "elasticsearch api_key")
    if api_key is not None:
        body["api_key"] = api_key


def _index(r: SectionReader, body: dict[str, Any]) -> None:
    logstash = r.boolean("logstash_format", default=False)
    body["logstash_format"] = False if logstash is None else logstash
    for key in ("logstash_prefix", "logstash_prefix_separator", "logstash_dateformat"):
        param = r.param(key)
        if param is None:
            continue
        if "${" in param.value.assumed() or "%{" in param.value.assumed():
            r.warn(param, f"{key}: placeholders (${{tag}}, %{{...}}) are not supported; "
                          "the key is left out")
            continue
        value = r.render(param)
        if value is not None:
            body[key] = value
    for key in ("target_index_key", "target_type_key"):
        param = r.param(key)
        if param is not None and param.value.assumed().strip():
            r.warn(param, f"{key}: an index chosen per record is not supported")
        elif param is not None and param.value.env_names:
            r.warn(param, f"{key} comes from ENV['{param.value.env_names[0]}'] (unset: "
                          "none); an index chosen per record is not supported, so setting "
                          "it has no effect in shipper")
    index = r.param("index_name")
    dated = _DATED_INDEX.match(index.value.literal or "") if index is not None else None
    if index is not None and dated is not None and logstash in (False, None):
        # index_name k8s-%Y.%m.%d is a daily index: exactly logstash_format with its parts.
        prefix, separator, dateformat = dated.groups()
        body.update(logstash_format=True, logstash_prefix=prefix,
                    logstash_prefix_separator=separator, logstash_dateformat=dateformat)
        r.note(index, f"index_name {index.value.literal}: a dated index, converted to "
                      f"logstash_format with prefix {prefix!r}, separator {separator!r} and "
                      f"date {dateformat!r} (the record's time, in UTC)")
        return
    placeholder = index is not None and ("${" in index.value.assumed()
                                         or "%" in index.value.assumed())
    if placeholder and index is not None:
        r.warn(index, "index_name: placeholders (${tag}, %Y...) are not supported; "
                      "use logstash_format for daily indices")
    if logstash is not True:  # false, or decided by the environment: index must be valid
        rendered = r.render(index) if index is not None and not placeholder else None
        body["index"] = rendered or "fluentd"
    elif index is not None and not placeholder:
        r.note(index, "index_name is not used with logstash_format true (as in Fluentd)")


def _template(r: SectionReader, body: dict[str, Any]) -> None:
    own = [p for p in (r.param("template_file"), r.param("templates"))
           if p is not None and p.value.assumed().strip()]
    for param in (r.param("template_file"), r.param("templates")):
        if param is not None and param not in own and param.value.env_names:
            r.warn(param, f"{param.key} comes from ENV['{param.value.env_names[0]}'] (unset: "
                          "none); if the pod sets it, shipper still installs its own index "
                          "template: set install_template: false to keep yours")
    if own:
        body["install_template"] = False
        r.warn(own[0], f"{own[0].key}: your own index template is not installed by shipper; "
                       "install_template is false so the one in the cluster stays (it must "
                       "map kubernetes.labels as shipper's does, or set de_dot)")
    r.skip(("template_name", "template_overwrite", "customize_template", "template_file",
            "templates"), "" if own else "shipper installs its own index template "
                                         "(template_name, install_template)")
    enable = r.literal("enable_ilm")
    policy = r.param("ilm_policy_id")
    if enable in ("true", "yes") and policy is not None:
        value = r.render(policy)
        if value is not None:
            body["ilm_policy"] = value
    r.skip(("enable_ilm", "ilm_policy_id", "ilm_policy_overwrite", "rollover_index",
            "deflector_alias", "index_date_pattern"))
    inline = r.param("ilm_policy")
    if inline is not None and inline.value.assumed().strip():
        r.warn(inline, "ilm_policy: shipper does not create ILM policies; create it in the "
                       "cluster and name it in ilm_policy")


def _tag_key(r: SectionReader, pattern: str) -> None:
    """``include_tag_key``: tailed records carry their tag in ``tag``; forwarded ones only when
    their forward source has ``tag_key``, which is set here for every forward source whose
    records reach this output (Fluentd writes the tag at the output; shipper at the source,
    so the tag is the same for every output the record reaches).
    """
    tag_key = r.literal("tag_key")
    include = r.param("include_tag_key")
    wanted = include is not None and include.value.assumed().strip().lower() in ("", "true",
                                                                                 "yes")
    if tag_key not in (None, "tag"):
        r.warn(r.section.params["tag_key"], f"tag_key {tag_key}: tailed records carry "
                                            "their tag in the field tag")
    r.skip(("include_tag_key", "tag_key"), "tailed records always carry their tag in tag")
    if not wanted or include is None:
        return
    key = tag_key or "tag"
    forwarded = [(name, component) for name, component in r.conv.document.sources.items()
                 if component.body.get("type") == "forward"
                 and overlap(pattern, _forward_tags(component.body))]
    for name, component in forwarded:
        existing = component.body.get("tag_key")
        if existing not in (None, key):
            r.warn(include, f"include_tag_key true: forward source {name} already writes "
                            f"its tag into {existing}, not {key}")
            continue
        component.body["tag_key"] = key
    if forwarded:
        r.note(include, f"include_tag_key true: forward source(s) "
                        f"{', '.join(n for n, _ in forwarded)} write the tag into {key} "
                        "(tag_key)")


def _forward_tags(body: dict[str, Any]) -> str:
    """The tags a converted forward source gives its records, as a pattern."""
    tag = body.get("tag")
    if isinstance(tag, str) and "$" not in tag:
        return tag
    prefix = body.get("add_tag_prefix")
    return f"{prefix}.**" if isinstance(prefix, str) and "$" not in prefix else "**"
