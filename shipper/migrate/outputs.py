"""``<match>`` sections -> shipper outputs (elasticsearch, logzio, forward, stdout).

``@type copy`` becomes one output per ``<store>`` with the same pattern (shipper sends a
record to every matching output anyway). ``null`` has no equivalent: shipper never produces
Fluentd's own ``fluent.**`` events, and other records to discard are better not read at all
(tail ``exclude``). Re-emitting plugins (``relabel``, ``detect_exceptions``,
``rewrite_tag_filter``) are flattened or reported; ``detect_exceptions``'
``remove_tag_prefix`` is applied to the tail sources' prefix so later patterns still match,
and its ``languages``, when one language has a preset, become a multiline rule with that
preset (several languages, or all: the pods choose with ``shipper.io/multiline``).
"""

from __future__ import annotations

from typing import Any

from outputs.logzio.config import REGION_HOSTS
from shipper.migrate.buffer import convert_buffer
from shipper.migrate.document import Commented, Component
from shipper.migrate.elasticsearch import convert_elasticsearch
from shipper.migrate.filters import tail_sources
from shipper.migrate.forward_out import convert_forward
from shipper.migrate.model import Param, Piece, Section, Text, Value
from shipper.migrate.reader import Conversion, SectionReader

_ELASTICSEARCH = ("elasticsearch", "opensearch")
_LOGZIO = ("logzio_buffered", "logzio")
_LOGZIO_AUTOMATIC = {
    "every record gets @timestamp": ("output_include_time",),
    "connections are pooled and closed by shipper": ("http_idle_timeout",),
    "retries go on until delivered (buffer.retry_max_secs caps the delay)": (
        "retry_count", "retry_sleep"),
    "a record too long for the listener is truncated and flagged": (
        "bulk_limit_warning_limit",),
}


def convert_match(section: Section, pattern: str, conv: Conversion,
                  ignore: tuple[str, ...] = (), name: str | None = None) -> bool:
    """Add the output(s) for one ``<match>`` or ``<store>``; True if any was added."""
    plugin = section.plugin
    reader = SectionReader(section, conv, ignore)
    name = name or reader.literal("@id") or plugin or "output"
    origin = f"{section.where} {section.title()}"
    body: dict[str, Any] | None = None
    if plugin in _ELASTICSEARCH:
        body = convert_elasticsearch(reader, pattern)
    elif plugin in _LOGZIO:
        body = _logzio(reader, pattern, conv)
    elif plugin == "forward":
        body = convert_forward(reader, pattern, conv)
    elif plugin == "stdout":
        body = {"type": "stdout", "match": pattern}
        reader.skip(("output_type",), "records are printed as JSON lines")
        for child in section.all_children("format"):
            reader.note(child, "<format>: records are printed as JSON lines")
    elif plugin == "copy":
        return _copy(reader, pattern, conv, name)
    else:
        _re_emitting(reader, conv)
        return False
    buffer = convert_buffer(reader, conv)
    if buffer:
        body["buffer"] = buffer
    for child in section.all_children("secondary"):
        reader.warn(child, "<secondary>: shipper has no secondary output; records a server "
                           "rejects go to the dead-letter store (state_dir/dead-letter)")
    conv.document.add("outputs", name, body, origin)
    reader.finish(f"the {body['type']} output")
    return True


def _copy(r: SectionReader, pattern: str, conv: Conversion, name: str) -> bool:
    added = False
    stores = r.section.all_children("store")
    for index, store in enumerate(stores):
        if store.arg.assumed().strip():
            r.note(store, f"<store {store.arg.assumed().strip()}>: each shipper output "
                          "has its own buffer and retries, so one failing never blocks another")
        store_name = None if store.params.get("@id") else f"{name}_{store.plugin or index}"
        added = convert_match(store, pattern, conv, name=store_name) or added
    r.skip(("copy_mode", "deep_copy"), "each output gets the records unchanged")
    r.finish("shipper")
    return added


def _re_emitting(r: SectionReader, conv: Conversion) -> None:
    section, plugin = r.section, r.section.plugin
    if plugin == "null":
        if all(p.startswith("fluent.") for p in section.arg.assumed().split()):
            r.note(section, f"{section.title()}: Fluentd's own events; shipper's logs are JSON "
                            "lines on its stdout and never enter the pipeline")
        else:
            r.warn(section, f"{section.title()}: shipper has no output that discards; records "
                            "matching this pattern now reach every other matching output "
                            "(exclude their files in the tail source instead)")
        return
    if plugin == "relabel":
        r.note(section, f"{section.title()}: the label's filters and outputs are converted "
                        "in place (shipper routes by tag only)")
        r.finish("shipper")
        return
    if plugin == "detect_exceptions":
        tails = tail_sources(conv, section)  # by the tags before the prefix is removed
        prefix = r.literal("remove_tag_prefix")
        if prefix:
            for component in conv.document.sources.values():
                tag = component.body.get("tag_prefix")
                if isinstance(tag, str) and (tag == prefix or tag.startswith(prefix + ".")):
                    component.body["tag_prefix"] = tag[len(prefix):].lstrip(".")
            r.note(section, f"remove_tag_prefix {prefix}: applied to the tail sources' "
                            "tag_prefix")
        _detect_exceptions(r, tails)
        return
    r.warn(section, f"{section.title()}: the output plugin {plugin or '(none)'} has no "
                    "equivalent in shipper; records matching this pattern are not sent there")


# detect_exceptions' language names -> shipper's multiline presets
_LANGUAGES = {"java": "java", "python": "python", "go": "go", "golang": "go", "ruby": "ruby",
              "rb": "ruby", "js": "node", "javascript": "node", "node": "node",
              "nodejs": "node", "csharp": "dotnet", "dotnet": "dotnet", "cs": "dotnet"}


def _detect_exceptions(r: SectionReader, tails: list[Component]) -> None:
    """One language with a preset -> a multiline rule with that preset on the tail sources
    it sees; several (or all, the default) -> a warning: one rule joins with one preset, so
    the pods say which they need (``shipper.io/multiline``)."""
    section = r.section
    languages = [name.lower() for name in (r.strings("languages") or [])]
    presets = sorted({_LANGUAGES[name] for name in languages if name in _LANGUAGES})
    unmapped = [name for name in languages if name not in _LANGUAGES]
    r.skip(("message", "stream", "remove_tag_prefix", "force_line_breaks"))
    if len(languages) == 1 and presets and tails:
        rule: dict[str, Any] = {"files": ["*"], "preset": presets[0]}
        lines = r.integer("max_lines")
        if lines is not None:
            rule["max_lines"] = lines
        size = r.size("max_bytes")
        if size is not None:
            rule["max_bytes"] = size
        flush = r.seconds("multiline_flush_interval")
        if flush is not None:
            rule["flush_timeout_secs"] = flush
        for component in tails:
            component.body.setdefault("multiline", []).append(rule)
        r.note(section, f"{section.title()}: converted to a multiline rule of the tail "
                        f"sources with the {presets[0]} preset")
        r.finish("the tail multiline rule")
        return
    r.skip(("languages", "max_lines", "max_bytes", "multiline_flush_interval"))
    which = ", ".join(languages) if languages else "every language"
    r.warn(section, f"{section.title()}: stack traces of {which} are detected together in "
                    "Fluentd; shipper joins one language per file: annotate the pods "
                    "(shipper.io/multiline: java|python|go|ruby|dotnet|node, read by the "
                    "kubernetes_metadata filter) or add multiline rules with a preset per "
                    "file pattern to the tail source"
                    + (f" ({', '.join(unmapped)}: no preset)" if unmapped else ""))


def _split_query(value: Value) -> tuple[Value, dict[str, Value]]:
    """``base?token=T&type=X`` as pieces -> (base, {"token": T, "type": X})."""
    base: list[Piece] = []
    params: dict[str, list[Piece]] = {}
    current: list[Piece] | None = None
    for piece in value.pieces:
        if not isinstance(piece, Text):
            (base if current is None else current).append(piece)
            continue
        text = piece.text
        if current is None:
            head, sep, text = text.partition("?")
            if head:
                base.append(Text(head))
            if not sep:
                continue
        for i, chunk in enumerate(text.split("&")):
            if i > 0 or current is None:
                key, _, rest = chunk.partition("=")
                current = params.setdefault(key, [])
                chunk = rest
            if chunk:
                current.append(Text(chunk))
    return Value(tuple(base)), {k: Value(tuple(v)) for k, v in params.items() if k}


def _logzio(r: SectionReader, pattern: str, conv: Conversion) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "logzio", "match": pattern}
    url = r.param("endpoint_url")
    log_type: Any = None
    if url is None:
        r.warn(r.section, "logzio output without endpoint_url: set listener and token by hand")
    else:
        base, query = _split_query(url.value)
        _listener(r, url, base, body)
        token = query.pop("token", None)
        if token is not None:
            body["token"] = r.secret_value(url, token, "LOGZIO_TOKEN", "Logz.io token (in "
                                                                       "endpoint_url)")
        else:
            r.warn(url, "endpoint_url carries no token: set token or token_file by hand")
        kind = query.pop("type", None)
        if kind is not None:
            log_type = r.render(Param("type", kind, url.file, url.line))
        for key in query:
            r.warn(url, f"endpoint_url parameter {key} is not converted")
    log_type = log_type or conv.logzio_type
    body["log_type"] = log_type or Commented("http-bulk", "the listener's default: Fluentd "
                                                          "sent no type")
    tags = r.boolean("output_include_tags")
    field = r.text("output_tags_fieldname")
    if tags is False:
        body["tag_key"] = None
    elif field is not None:
        body["tag_key"] = field
    gzip = r.boolean("gzip")
    if gzip is not None:
        body["gzip"] = gzip
    limit = r.size("bulk_limit")
    if limit is not None:
        body["max_request_bytes"] = limit
    for why, keys in _LOGZIO_AUTOMATIC.items():
        r.skip(keys, why)
    return body


def _listener(r: SectionReader, url: Param, base: Value, body: dict[str, Any]) -> None:
    literal = base.literal
    if literal is not None:
        host = literal.split("://", 1)[-1].split("/", 1)[0]
        region = next((code for code, name in REGION_HOSTS.items()
                       if host == f"{name}:8071" and literal.startswith("https://")),
                      None)
        if region is not None:
            body["region"] = region
            return
        body["listener"] = literal
        if literal.startswith("http://"):
            body["allow_insecure"] = True
            r.warn(url, "endpoint_url is plain http: the token travels in clear text "
                        "(allow_insecure: true); prefer https on port 8071")
        return
    rendered = r.render(Param("endpoint_url", base, url.file, url.line))
    if rendered is not None:
        body["listener"] = rendered
