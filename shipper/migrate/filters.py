"""``<filter>`` sections -> shipper filters, or the setting that does the same job.

- ``kubernetes_metadata`` -> the ``kubernetes_metadata`` filter, key by key; the in-cluster
  API address Fluentd builds from ``KUBERNETES_SERVICE_HOST`` is shipper's default.
- ``parser`` with a JSON ``<parse>`` on ``log`` -> ``json_merge``.
- ``grep`` ``<exclude>`` of namespaces or containers by exact name -> ``exclude`` globs of the
  tail sources (the kubelet's file names carry both), which also saves reading those files.
- ``record_transformer``/``record_modifier`` that only set Logz.io's ``type`` or copy ``log``
  to ``message`` -> nothing: the logzio output does both.
- ``concat`` -> a tail multiline rule (``multiline_start_regexp``), or nothing for the docker
  partial-line joining the tail source does itself.

Anything else is a warning: shipper has no general record rewriting or tag rewriting.
"""

from __future__ import annotations

import re
from typing import Any

from shipper.filters import parsers
from shipper.migrate.document import Component
from shipper.migrate.model import Section
from shipper.migrate.reader import Conversion, SectionReader
from shipper.migrate.routing import overlap, pattern_of
from shipper.migrate.rubyre import ruby_regex
from shipper.tagmatch import collapse_globstars

_NAME = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_EXACT = re.compile(rf"^/?\^\(?((?:{_NAME}\|?)+)\)?\$/?$")
_KEYS = {"namespace_name": "namespace", "container_name": "container"}
_K8S_AUTOMATIC = ("cache_size", "cache_ttl", "watch_retry_interval", "watch_retry_max_times",
                  "watch_retry_exponential_backoff_base", "stats_interval", "open_timeout",
                  "read_timeout", "use_journal", "annotations_regexp", "include_namespace_id")
_LOGZIO_RECORD = {"type", "message"}
_ENV_FIRST = re.compile(r"""^\s*ENV\[['"](\w+)['"]\]\s*\|\|""")


def convert_filter(section: Section, pattern: str, conv: Conversion) -> None:
    """Add the shipper equivalent of one ``<filter>`` (or report that there is none)."""
    plugin = section.plugin
    reader = SectionReader(section, conv)
    name = reader.literal("@id") or plugin or "filter"
    origin = f"{section.where} {section.title()}"
    if plugin == "kubernetes_metadata":
        body = _kubernetes(reader, pattern)
        conv.document.add("filters", name, body, origin)
        reader.finish("the kubernetes_metadata filter")
    elif plugin == "parser":
        merge = _parser(reader, pattern)
        if merge is not None:
            conv.document.add("filters", name, merge, origin)
            reader.finish("the json_merge filter")
    elif plugin == "grep":
        _grep(reader, conv)
    elif plugin in ("record_transformer", "record_modifier"):
        _record(reader, conv)
    elif plugin == "concat":
        _concat(reader, conv)
    else:
        reader.warn(section, f"{section.title()}: the filter plugin {plugin or '(none)'} has "
                             "no equivalent in shipper; it is not converted")


def _kubernetes(r: SectionReader, pattern: str) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "kubernetes_metadata", "match": pattern}
    url = r.param("kubernetes_url")
    in_cluster = url is None
    if url is not None:
        text = url.value.assumed()
        if "KUBERNETES_SERVICE_HOST" in text or "KUBERNETES_SERVICE_HOST" in "".join(
                url.value.untranslatable) or not text.strip():
            override = _ENV_FIRST.match("".join(url.value.untranslatable))
            names = [override.group(1)] if override else list(url.value.env_names)
            names = [n for n in names if not n.startswith("KUBERNETES_SERVICE_")]
            if names:  # ENV['X'] || the in-cluster URL: X still overrides it
                body["kubernetes_url"] = f"${{{names[0]}:-}}"
                r.conv.env_used.setdefault(names[0], url.where)
                r.warn(url, f"kubernetes_url: ENV['{names[0]}'] overrides the in-cluster API "
                            f"server (the default when it is unset); shipper's kubernetes_url "
                            f"is the server's base URL, so if the pod sets {names[0]} with a "
                            "trailing /api, remove it")
            else:
                r.note(url, "kubernetes_url: the in-cluster API server "
                            "(KUBERNETES_SERVICE_HOST) is shipper's default, so the key is "
                            "left out")
            in_cluster = True
        else:
            rendered = r.render(url, lambda s: re.sub(r"/api/?$", "", s.strip()))
            if rendered is not None:
                body["kubernetes_url"] = rendered
            in_cluster = rendered is None
    for key in ("ca_file", "bearer_token_file"):
        param = r.param(key)
        if param is None:
            continue
        if in_cluster:
            r.note(param, f"{key}: with the in-cluster API server the service account's "
                          "files are used")
        else:
            value = r.render(param, optional=True)
            if value is not None:
                body[key] = value
    for key in ("verify_ssl", "de_dot", "de_slash", "skip_labels", "skip_container_metadata",
                "skip_master_url", "skip_namespace_metadata"):
        value = r.boolean(key)
        if value is not None:
            body[key] = value
    for key in ("de_dot_separator", "de_slash_separator"):
        value = r.text(key)
        if value is not None:
            body[key] = value
    annotations = r.strings("annotation_match")
    if annotations:
        body["annotation_match"] = [ruby_regex(a) or a for a in annotations]
    watch = r.param("watch")
    if watch is not None and watch.value.literal is not None and watch.value.literal.strip() \
            in ("false", "no"):
        r.warn(watch, "watch false: shipper always watches pods (list+watch keeps its cache "
                      "current with far fewer requests)")
    elif watch is not None and watch.value.env_names:
        r.note(watch, f"watch comes from ENV['{watch.value.env_names[0]}']; shipper always "
                      "watches pods (list+watch keeps its cache current with far fewer "
                      "requests), so the variable is not read")
    r.skip(("watch",))
    r.skip(_K8S_AUTOMATIC, "not needed: the cache is kept current by the watch")
    return body


def _parser(r: SectionReader, pattern: str) -> dict[str, Any] | None:
    parse = r.section.child("parse")
    kind = ""
    if parse is not None:
        p = SectionReader(parse, r.conv)
        kind = p.literal("@type", "type") or ""
        p.skip(("time_format", "time_key", "keep_time_key", "time_type"),
               "a parsed time field is merged as a field; the record keeps its time")
        if kind == "json":
            p.skip(("json_parser",))
            p.finish("the json_merge filter")
        elif kind == "multi_format" and _json_or_text(parse):
            kind = "json"  # JSON lines are merged, the others pass unchanged: json_merge
            r.note(parse, "multi_format of json then none: json_merge merges the JSON lines "
                          "and passes the others unchanged (without Fluentd's copy of the "
                          "line in message)")
            p.finish("the json_merge filter")
    elif r.has("format"):
        kind = r.literal("format") or ""
    if kind != "json" or parsers.get("json") is None:
        r.warn(r.section, f"{r.section.title()}: only the json parser has an equivalent "
                          f"(json_merge); parser {kind or '(none)'} is not converted")
        return None
    body: dict[str, Any] = {"type": "json_merge", "match": pattern}
    key = r.text("key_name")
    if key is not None:
        body["key_name"] = key
    target = r.text("hash_value_field")
    if target is not None:
        body["merge_key"] = target
    remove = r.boolean("remove_key_name_field")
    if remove is not None:
        body["keep_log"] = remove is False if isinstance(remove, bool) else remove
    reserve = r.param("reserve_data")
    if reserve is None or (reserve.value.literal or "").strip() in ("false", "no"):
        r.note(reserve or r.section, "json_merge always keeps the record's other fields "
                                     "(Fluentd's reserve_data true)")
    r.skip(("reserve_data", "reserve_time", "emit_invalid_record_to_error", "replace_invalid_"
            "sequence"), "lines that are not JSON objects pass unchanged and are counted")
    return body


def _json_or_text(parse: Section) -> bool:
    """``<parse> @type multi_format``: a json pattern first, then only ``none`` patterns."""
    kinds = []
    for pattern in parse.all_children("pattern"):
        param = pattern.params.get("format") or pattern.params.get("@type")
        kinds.append(param.value.assumed().strip() if param is not None else "")
    return len(kinds) >= 2 and kinds[0] == "json" and all(k == "none" for k in kinds[1:])


def _grep(r: SectionReader, conv: Conversion) -> None:
    rules = [(c, c.params.get("key"), c.params.get("pattern"))
             for c in r.section.all_children("exclude")]
    scope = pattern_of(r.section, conv)
    for child, key, pattern in rules:
        raw = key.value.assumed().strip() if key else ""
        field = raw.replace("$['kubernetes']['", "kubernetes.")
        field = field.removeprefix("$.").rstrip("']")
        what = _KEYS.get(field.removeprefix("kubernetes."))
        match = _EXACT.match(pattern.value.assumed().strip()) if pattern else None
        if what is None or match is None or not field.startswith("kubernetes."):
            r.warn(child, f"grep <exclude> on {field or '(no key)'}: shipper can only exclude "
                          "namespaces or containers by exact name (as tail exclude globs); "
                          "not converted")
            continue
        if not raw.startswith(("$.", "$[")):
            r.warn(child, f"grep <exclude> on {raw}: without $. the key is one top-level "
                          "field of that literal name, which no record has, so Fluentd "
                          "excludes nothing; not converted (write $." + field + " to exclude)")
            continue
        names = match.group(1).split("|")
        globs = [f"*_{n}_*" if what == "namespace" else f"*_*_{n}-{'?' * 64}.log"
                 for n in names]
        converted, early, narrow = [], [], []
        for component in tail_sources(conv, r.section):
            prefix = component.body.get("tag_prefix", "kube")
            tags = f"{prefix}.**" if prefix else "**"
            # A file exclude drops every line of the file; Fluentd drops only records the
            # grep sees (its tag scope) and only once kubernetes_metadata added the field.
            if not _metadata_before(conv, tags):
                early.append(component.name)
            elif not _covers(scope, tags):
                narrow.append(component.name)
            else:
                component.body.setdefault("exclude", []).extend(globs)
                converted.append(component.name)
        if converted:
            r.note(child, f"grep <exclude> of {what}s {', '.join(names)} -> exclude "
                          f"{', '.join(globs)} on the tail sources (those files are not read)")
        if early:
            r.warn(child, f"grep <exclude> of {what}s {', '.join(names)}: not converted: no "
                          "kubernetes_metadata filter runs before it on the records of "
                          f"{', '.join(early)}, so {field} does not exist yet and Fluentd "
                          "excludes nothing; a file exclude would drop those files")
        if narrow:
            r.warn(child, f"grep <exclude> of {what}s {', '.join(names)}: not converted: its "
                          f"tag pattern {scope!r} sees only some records of "
                          f"{', '.join(narrow)}; a file exclude would drop all of them")
    for child in r.section.children:
        if child.name != "exclude":
            r.warn(child, f"grep <{child.name}>: shipper has no filter that keeps only "
                          "matching records; not converted")
    for name in [k for k in r.section.params if k.startswith(("regexp", "exclude"))]:
        r.warn(r.section.params[name], f"grep {name}: not converted (write it as an <exclude> "
                                       "of a namespace or container name)")
        r.skip((name,))
    r.finish("shipper")


def _covers(scope: str, tags: str) -> bool:
    """True when the tag pattern ``scope`` matches every tag ``tags`` (``p.q.**``) matches.

    Decided on the pattern text: ``**``, or ``a.*.**``-like prefixes of ``tags`` followed by
    ``**``. Anything else counts as not covering (the conversion then warns).
    """
    wanted = tags.split(".")[:-1]
    for single in collapse_globstars(scope).split():
        parts = single.split(".")
        if parts == ["**"]:
            return True
        if parts[-1] != "**" or len(parts) - 1 > len(wanted):
            continue
        if all(p == w or p == "*" for p, w in zip(parts[:-1], wanted, strict=False)):
            return True
    return False


def _metadata_before(conv: Conversion, tags: str) -> bool:
    """A kubernetes_metadata filter converted so far sees every record of ``tags``."""
    return any(c.body.get("type") == "kubernetes_metadata"
               and isinstance(c.body.get("match"), str) and _covers(c.body["match"], tags)
               for c in conv.document.filters.values())


def tail_sources(conv: Conversion, section: Section) -> list[Component]:
    """The tail sources whose records this filter section sees (by tag)."""
    pattern = pattern_of(section, conv)
    found = []
    for component in conv.document.sources.values():
        prefix = component.body.get("tag_prefix", "kube")
        if component.body.get("type") == "tail" and isinstance(prefix, str) and overlap(
                pattern, f"{prefix}.**" if prefix else "**"):
            found.append(component)
    return found


def _record(r: SectionReader, conv: Conversion) -> None:
    record = r.section.child("record")
    keys = set(record.params) if record is not None else set()
    removes = (r.literal("remove_keys") or "").replace(" ", "")
    if record is not None and keys <= _LOGZIO_RECORD and removes in ("", "log"):
        message = record.params.get("message")
        if message is None or "record[\"log\"]" in message.value.assumed().replace("'", '"'):
            log_type = record.params.get("type")
            if log_type is not None and log_type.value.literal is not None:
                conv.logzio_type = log_type.value.literal.strip()
            r.note(r.section, f"{r.section.title()}: the logzio output sets type (log_type) "
                              "and moves log to message itself; nothing to convert")
            r.skip(("remove_keys", "enable_ruby", "auto_typecast"))
            r.finish("shipper")
            return
    r.warn(r.section, f"{r.section.title()}: shipper has no record rewriting filter; the "
                      f"fields {', '.join(sorted(keys)) or '(none)'} are not set")
    r.skip(list(r.section.params))


def _concat(r: SectionReader, conv: Conversion) -> None:
    start = r.param("multiline_start_regexp")
    end = r.param("multiline_end_regexp")
    key = r.literal("key") or "message"
    partial = r.literal("partial_key") or r.literal("use_partial_cri_logtag") \
        or r.literal("use_partial_metadata")
    if start is None and end is None and partial is not None:
        r.note(r.section, f"{r.section.title()}: CRI and docker partial lines (logtag P, "
                          "partial metadata) are joined by the tail source itself")
        r.skip(list(r.section.params))
        return
    if start is None and end is not None and "\\n" in end.value.assumed():
        r.note(r.section, f"{r.section.title()}: docker's partial lines (no trailing newline) "
                          "are joined by the tail source itself")
        r.skip(list(r.section.params))
        return
    pattern = ruby_regex(start.value.assumed()) if start is not None else None
    tails = tail_sources(conv, r.section)
    if pattern is None or key != "log" or not tails:
        r.warn(r.section, f"{r.section.title()}: not converted; use a multiline rule of the "
                          "tail source (multiline.start_pattern)")
        r.skip(list(r.section.params))
        return
    rule: dict[str, Any] = {"files": ["*"], "start_pattern": pattern}
    flush = r.seconds("flush_interval", default=2.0)
    if flush is not None:
        rule["flush_timeout_secs"] = flush
    for component in tails:
        component.body.setdefault("multiline", []).append(rule)
    r.note(r.section, f"{r.section.title()}: converted to a multiline rule of the tail "
                      "sources")
    r.skip(("key", "separator", "stream_identity_key", "timeout_label", "use_first_timestamp",
            "partial_key", "partial_value", "keep_partial_key"))
    r.finish("the tail multiline rule")
