"""``<source>`` sections -> shipper sources (``tail``, ``forward``) or telemetry.

``in_tail`` of container logs maps key by key; its ``<parse>`` needs no setting because
shipper's tail source decodes docker json-file and CRI lines itself, detected per file (the
``json``, ``cri``, ``multi_format`` and CRI-regexp parsers of Kubernetes configs all say the
same). A ``multiline`` parser becomes a multiline rule (its ``format_firstline``); other
parsers extract fields shipper does not extract, which is a warning. ``in_forward`` maps to the
forward source including ``<security>`` and ``<transport tls>``; ``prometheus`` becomes the
telemetry listen address. Every other input plugin is a warning.
"""

from __future__ import annotations

from typing import Any

from shipper.migrate.document import Commented
from shipper.migrate.model import Section
from shipper.migrate.reader import Conversion, SectionReader, fluent_size
from shipper.migrate.rubyre import ruby_regex
from shipper.sources.forward.config import DEFAULT_PORT, ForwardConfig
from shipper.sources.tail.config import TailConfig

_TAIL = TailConfig()
_FORWARD = ForwardConfig()
CONTAINER_DIRS = ("/var/log/containers", "/var/log/pods")
CONTAINER_PARSERS = ("json", "cri", "docker", "container", "multi_format", "regexp")
_TAIL_AUTOMATIC = ("follow_inodes", "enable_stat_watcher", "enable_watch_timer",
                   "open_on_every_update", "pos_file_compaction_interval",
                   "skip_refresh_on_startup", "ignore_repeated_permission_error",
                   "read_lines_limit", "emit_unmatched_lines")
_TIME_KEYS = ("time_format", "time_key", "keep_time_key", "time_type", "utc", "localtime",
              "timezone", "time_format_fallbacks", "estimate_current_event")
_MONITORS = ("prometheus_monitor", "prometheus_output_monitor", "prometheus_tail_monitor")
_NO_EQUIVALENT = {
    "systemd": "shipper has no journald source; these records are not shipped",
    "monitor_agent": "shipper has no JSON monitoring API; use /metrics, /healthz and /readyz "
                     "of telemetry.listen",
}


def convert_source(section: Section, conv: Conversion, ignore: tuple[str, ...]) -> None:
    """Add the shipper equivalent of one ``<source>`` (or report that there is none)."""
    plugin = section.plugin
    reader = SectionReader(section, conv, ignore)
    name = reader.literal("@id") or _name_from_path(section) or plugin or "source"
    if plugin == "tail":
        body = _tail(reader, conv)
        conv.document.add("sources", name, body, f"{section.where} {section.title()}")
        reader.finish("the tail source")
    elif plugin == "forward":
        body = _forward(reader, conv)
        conv.document.add("sources", name, body, f"{section.where} {section.title()}")
        reader.finish("the forward source")
    elif plugin == "prometheus":
        _prometheus(reader, conv)
    elif plugin in _MONITORS:
        reader.note(section, f"{section.title()}: shipper's /metrics already exports its own "
                             "metrics (shipper_* names)")
    else:
        why = _NO_EQUIVALENT.get(plugin, f"the input plugin {plugin or '(none)'} has no "
                                         "equivalent in shipper; it is not converted")
        reader.warn(section, f"{section.title()}: {why}")


def _name_from_path(section: Section) -> str | None:
    """A tail source without ``@id`` is named after what it reads (containers, kubelet)."""
    param = section.params.get("path")
    if section.plugin != "tail" or param is None or param.value.literal is None:
        return None
    first = param.value.literal.split(",")[0].strip()
    if any(d in first for d in CONTAINER_DIRS):
        return "containers"
    parts = [p.split(".")[0] for p in first.strip("/").split("/")]
    named = [p for p in parts if p and "*" not in p and "%" not in p]
    return named[-1] if named else None


# -- tail -------------------------------------------------------------------------------------

def _tail(r: SectionReader, conv: Conversion) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "tail"}
    paths = r.strings("path") or []
    if paths:
        body["include"] = paths
        for param in [r.section.params["path"]]:
            if "%" in param.value.assumed():
                r.warn(param, "path: strftime placeholders (%Y...) are not expanded by shipper")
    excludes = r.strings("exclude_path")
    if excludes:
        body["exclude"] = excludes
    _tag(r, body, conv)
    head = r.boolean("read_from_head")
    body["read_from_head"] = head if head is not None else Commented(
        False, "Fluentd's default; true also ships what is already on disk")
    for fluent, ours, default in (("rotate_wait", "rotate_wait_secs", _TAIL.rotate_wait_secs),
                                  ("refresh_interval", "refresh_interval_secs",
                                   _TAIL.refresh_interval_secs)):
        value = r.seconds(fluent, default=default)
        if value is not None:
            body[ours] = value
    line = r.size("max_line_size", default=_TAIL.max_line_bytes)
    if line is not None:
        body["max_line_bytes"] = line
        r.note(r.section.params["max_line_size"], "max_line_size: a longer line is cut and "
                                                  "flagged truncated, not skipped")
    r.skip(("pos_file",), "positions are kept under state_dir (Fluentd's pos_file is not "
                          "imported, so read_from_head decides where files new to shipper start)")
    r.skip(_TAIL_AUTOMATIC, "shipper does this itself (file identity, inotify with a "
                            "rescan fallback, bounded reads)")
    _parse(r, body, paths)
    if not any(d in p for p in paths for d in CONTAINER_DIRS) and paths:
        kind = _parser_kind(r.section)
        listed = ", ".join(paths)
        if kind in ("cri", "docker", "container"):
            r.note(r.section, f"{r.section.title()}: {listed} is read as container log files "
                              f"(parser {kind}), which shipper decodes itself")
        elif kind == "json":
            r.warn(r.section, f"{r.section.title()}: shipper's tail source reads container log "
                              f"files; lines of {listed} in docker json-file form (log, "
                              "stream, time) are decoded, other JSON lines ship whole in log, "
                              "flagged malformed, where Fluentd's json parser made fields")
        else:
            r.warn(r.section, f"{r.section.title()}: shipper's tail source reads container "
                              f"log files (docker json-file, CRI); lines of {listed} ship "
                              "whole in log, flagged malformed")
    return body


def _tag(r: SectionReader, body: dict[str, Any], conv: Conversion) -> None:
    param = r.param("tag")
    if param is None:
        return
    tag = param.value.assumed().strip()
    if param.value.literal is None:
        r.note(param, f"tag depends on {', '.join(param.value.env_names) or 'embedded Ruby'}; "
                      f"converted as {tag!r}, its value when the variables are unset")
    if tag == "*":
        body["tag_prefix"] = ""
    elif tag.endswith(".*") and "*" not in tag[:-2]:
        body["tag_prefix"] = tag[:-2]
    elif "*" not in tag:
        body["tag_prefix"] = tag
        conv.fixed_tags[tag] = tag
        r.warn(param, f"tag {tag}: shipper's tag is always <prefix>.<file path>; converted to "
                      f"tag_prefix: {tag}, and match patterns naming {tag} now read {tag}.**")
    else:
        prefix = tag.split("*", 1)[0].rstrip(".")
        body["tag_prefix"] = prefix
        r.warn(param, f"tag {tag}: only a trailing * (prefix.*) is supported; converted to "
                      f"tag_prefix: {prefix}")


def _parser_kind(source: Section) -> str:
    """The literal parser type of a tail ``<source>`` (``<parse> @type`` or ``format``)."""
    section = source.child("parse")
    holder = section if section is not None else source
    param = holder.params.get("@type") or holder.params.get("type") or holder.params.get(
        "format")
    return param.value.assumed().strip() if param is not None else ""


def _parse(r: SectionReader, body: dict[str, Any], paths: list[str]) -> None:
    section = r.section.child("parse")
    pr = SectionReader(section, r.conv) if section is not None else r
    param = pr.param("@type", "type") if section is not None else pr.param("format")
    pr.skip(_TIME_KEYS, "container log timestamps are read from the runtime's line")
    pr.skip(("multiline_flush_interval",))
    r.skip(("multiline_flush_interval",))
    if param is None:
        return
    kind = param.value.assumed().strip()
    if param.value.literal is None:
        pr.note(param, f"the parser depends on {', '.join(param.value.env_names)} (default "
                       f"{kind!r}); shipper detects docker json-file and CRI per file, so no "
                       "setting is needed for either")
        return
    if kind.startswith("/"):
        kind, expression = "regexp", kind
    else:
        expression = pr.literal("expression") or ""
    if kind == "multiline":
        _multiline(pr, body, paths)
    elif kind in CONTAINER_PARSERS and _container_parser(kind, expression, section):
        pr.note(param, f"parser {kind}: shipper decodes docker json-file and CRI lines itself "
                       "(detected per file); no setting needed")
    else:
        pr.warn(param, f"parser {kind}: shipper does not extract fields from lines; container "
                       "lines are decoded as docker/CRI and other lines ship whole in log")
    if section is not None:  # everything else in <parse> belongs to the parser just judged
        pr.skip(list(section.params))
        for child in section.children:
            pr.skip(list(child.params))


def _container_parser(kind: str, expression: str, section: Section | None) -> bool:
    """True when the parser only decodes container runtime lines (json, CRI)."""
    if kind == "regexp":
        return "stdout|stderr" in expression
    if kind == "multi_format" and section is not None:
        for pattern in section.all_children("pattern"):
            param = pattern.params.get("format") or pattern.params.get("@type")
            text = param.value.assumed().strip() if param is not None else ""
            inner = pattern.params.get("expression")
            expression = inner.value.assumed() if inner is not None else text
            if not (text in ("json", "cri") or "stdout|stderr" in expression):
                return False
    return True


def _multiline(pr: SectionReader, body: dict[str, Any], paths: list[str]) -> None:
    first = pr.param("format_firstline")
    if first is None:
        pr.warn(pr.section, "multiline parser without format_firstline: no multiline rule "
                            "can be derived")
        return
    pattern = ruby_regex(first.value.assumed())
    if pattern is None:
        pr.warn(first, "format_firstline is not a regular expression shipper can use; no "
                       "multiline rule")
        return
    rule: dict[str, Any] = {"files": paths or ["*"], "start_pattern": pattern}
    flush = pr.seconds("multiline_flush_interval", default=2.0)
    if flush is not None:
        rule["flush_timeout_secs"] = flush
    body.setdefault("multiline", []).append(rule)
    formats = [k for k in pr.section.params if k.startswith("format") and k[6:].isdigit()]
    if formats:
        pr.warn(pr.section.params[formats[0]], f"{', '.join(formats)}: events are joined but "
                                               "their fields are not extracted")
        pr.skip(formats)


# -- forward ----------------------------------------------------------------------------------

def _forward(r: SectionReader, conv: Conversion) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "forward"}
    port = r.text("port") or str(DEFAULT_PORT)
    bind = r.text("bind") or "0.0.0.0"
    body["listen"] = f"[{bind}]:{port}" if ":" in bind and "$" not in bind else f"{bind}:{port}"
    for key in ("tag", "add_tag_prefix", "source_hostname_key", "source_address_key"):
        value = r.text(key)
        if value is not None:
            body[key] = value
    limit = r.param("chunk_size_limit")
    if limit is not None:
        size = r.render(limit, lambda s: str(fluent_size(s)) if fluent_size(s) else None)
        if size is not None:
            body["max_frame_bytes"] = int(size) if size.isdigit() else size
            if size.isdigit() and int(size) > _FORWARD.max_decompressed_bytes:
                body["max_decompressed_bytes"] = int(size)
    r.skip(("skip_invalid_event",), "invalid events are always skipped and counted")
    r.skip(("chunk_size_warn_limit", "linger_timeout", "send_keepalive_packet"),
           "not needed: shipper bounds frames and idle connections itself")
    r.skip(("resolve_hostname",), "source_hostname_key resolves the client's name")
    security = r.section.child("security")
    if security is not None:
        body["security"] = _security(security, conv)
    transport = r.section.child("transport")
    if transport is not None:
        tls = _transport(transport, conv)
        if tls:
            body["tls"] = tls
    return body


def _security(section: Section, conv: Conversion) -> dict[str, Any]:
    s = SectionReader(section, conv)
    out: dict[str, Any] = {}
    key = s.secret("shared_key", "FORWARD_SHARED_KEY", "forward input shared_key")
    if key is not None:
        out["shared_key"] = key
    for name in ("self_hostname",):
        value = s.text(name)
        if value is not None:
            out[name] = value
    for name in ("user_auth", "allow_anonymous_source"):
        value = s.boolean(name)
        if value is not None:
            out[name] = value
    users = []
    for user in section.all_children("user"):
        u = SectionReader(user, conv)
        username = u.text("username") or ""
        entry: dict[str, Any] = {"username": username}
        password = u.secret("password", f"FORWARD_{username}_PASSWORD",
                            f"forward input password of user {username}")
        if password is not None:
            entry["password"] = password
        users.append(entry)
        u.finish("a forward user")
    if users:
        out["users"] = users
    clients = []
    for client in section.all_children("client"):
        c = SectionReader(client, conv)
        network = c.text("network") or c.text("host")
        entry = {"network": network or ""}
        key = c.secret("shared_key", "FORWARD_CLIENT_SHARED_KEY", "forward client shared_key")
        if key is not None:
            entry["shared_key"] = key
        names = c.strings("users")
        if names:
            entry["users"] = names
        clients.append(entry)
        if client.params.get("host") is not None:
            c.note(client, "<client> host: shipper matches clients by IP address or network; "
                           "check that the value is one")
        c.finish("a forward client")
    if clients:
        out["clients"] = clients
    s.finish("the forward source's security")
    return out


def _transport(section: Section, conv: Conversion) -> dict[str, Any]:
    t = SectionReader(section, conv)
    kind = section.arg.assumed().strip()
    if kind != "tls":
        t.finish("the forward source")
        return {}
    out: dict[str, Any] = {}
    for fluent, ours in (("cert_path", "cert_file"), ("private_key_path", "key_file"),
                         ("ca_path", "ca_file")):
        value = t.text(fluent)
        if value is not None:
            out[ours] = value
    auth = t.boolean("client_cert_auth")
    if auth is not None:
        out["client_cert_auth"] = auth
    version = t.literal("min_version", "version")
    if version is not None:
        out["min_version"] = "1.3" if "1_3" in version or "1.3" in version else "1.2"
    t.finish("the forward source's tls")
    return out


def _prometheus(r: SectionReader, conv: Conversion) -> None:
    port = r.text("port") or "24231"
    bind = r.text("bind") or "0.0.0.0"
    listen = f"[{bind}]:{port}" if ":" in bind and "$" not in bind else f"{bind}:{port}"
    conv.document.top["telemetry"] = {"listen": listen}
    r.skip(("metrics_path",), "shipper serves /metrics")
    r.note(r.section, f"{r.section.title()}: telemetry.listen serves shipper's own /metrics; "
                      "the metric names differ (shipper_*), so dashboards and alerts on "
                      "fluentd_* need updating")
    r.finish("telemetry")
