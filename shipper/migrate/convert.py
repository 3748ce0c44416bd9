"""Walk a parsed Fluentd configuration and build the shipper configuration.

Two passes, because Fluentd's routing depends on the whole file: first every ``<source>`` (and
``<system>``), wherever it is, so tags are known; then ``<filter>`` and ``<match>`` in file
order, which is the order shipper's filters run in, with the first-match checks of
``routing``. ``<label>`` sections are flattened (shipper routes by tag only): ``@FLUENT_LOG``
holds Fluentd's own logs and is not needed, ``@ERROR`` is replaced by the dead-letter store,
any other label is converted in place with a note.
"""

from __future__ import annotations

from shipper.config import checks
from shipper.config.model import MAX_WORKERS
from shipper.migrate.document import Commented
from shipper.migrate.filters import convert_filter
from shipper.migrate.findings import Findings
from shipper.migrate.model import Section
from shipper.migrate.outputs import convert_match
from shipper.migrate.reader import Conversion, SectionReader
from shipper.migrate.routing import Scope, overlap, pattern_of
from shipper.migrate.sources import convert_source

OUTPUT_PLUGINS = ("elasticsearch", "opensearch", "logzio_buffered", "logzio", "forward",
                  "stdout", "copy")
_LOG_LEVELS = {"trace": "debug", "debug": "debug", "info": "info", "warn": "warning",
               "error": "error", "fatal": "error"}
_SYSTEM_UNNEEDED = ("root_dir", "suppress_repeated_stacktrace", "emit_error_log_interval",
                    "suppress_config_dump", "without_source", "rpc_endpoint",
                    "enable_get_dump", "process_name", "log_event_verbose",
                    "ignore_repeated_log_interval", "ignore_same_log_interval",
                    "enable_msgpack_time_support", "file_permission", "dir_permission",
                    "strict_config_value", "disable_shared_socket", "umask")
DEFAULT_STATE_DIR = "/var/lib/shipper"


def _source_tags(body: dict[str, object]) -> str:
    """The tags a converted source gives its records, as a pattern."""
    if body.get("type") == "tail":
        prefix = body.get("tag_prefix", "kube")
        return f"{prefix}.**" if isinstance(prefix, str) and prefix else "**"
    return "**"  # a network source receives whatever tags its senders set


def _current_tags(conv: Conversion, name: str, recorded: str) -> str:
    """A source's tags now (a later section may have changed its prefix)."""
    component = conv.document.sources.get(name)
    return _source_tags(component.body) if component is not None else recorded


class _Labels:
    """Which label each converted source's records start in, with the tags they carry.

    Fluentd sends the records of a source with ``@label X`` only through ``<label X>``, the
    others only through the top-level sections; shipper routes by tag alone. Where a section
    would now also see records of a source Fluentd kept from it, the conversion warns.
    """

    def __init__(self) -> None:
        self.sources: list[tuple[str | None, str, str]] = []  # (label, source name, tags)
        self.edges: set[tuple[str | None, str]] = set()  # <match> with @label: from -> to
        self._reach: dict[str | None, set[str]] | None = None

    def collect_edges(self, sections: list[Section], label: str | None) -> None:
        """``relabel`` (or any ``<match>`` with ``@label``) passes records to another label."""
        for section in sections:
            if section.name == "label":
                self.collect_edges(section.children, section.arg.assumed().strip())
            elif section.name == "worker":
                self.collect_edges(section.children, label)
            elif section.name == "match" and "@label" in section.params:
                self.edges.add((label, section.params["@label"].value.assumed().strip()))

    def reaching(self, label: str | None) -> set[str]:
        """The sources whose records Fluentd may pass through ``label`` (None: top level)."""
        if self._reach is None:
            reach: dict[str | None, set[str]] = {}
            for lbl, name, _ in self.sources:
                reach.setdefault(lbl, set()).add(name)
            for _ in range(len(self.edges) + 1):  # a fixed point within |edges| rounds
                changed = False
                for origin, target in self.edges:
                    new = reach.get(origin, set()) - reach.get(target, set())
                    if new:
                        reach.setdefault(target, set()).update(new)
                        changed = True
                if not changed:
                    break
            self._reach = reach
        return self._reach.get(label, set())

    def add(self, label: str | None, name: str, body: dict[str, object]) -> None:
        self.sources.append((label, name, _source_tags(body)))

    def check(self, section: Section, pattern: str, label: str | None,
              conv: Conversion) -> None:
        if not any(lbl is not None for lbl, _, _ in self.sources):
            return
        reached = self.reaching(label)
        others = [f"{name} ({'@label ' + lbl if lbl else 'no @label'})"
                  for lbl, name, tags in self.sources
                  if name not in reached and overlap(pattern, _current_tags(conv, name, tags))]
        if others:
            where = f"<label {label}>" if label else "the top level"
            conv.findings.warn(section.where, f"{section.title()} in {where}: in Fluentd only "
                                              "records of sources routed there reach it; "
                                              "shipper routes by tag only, so records of "
                                              f"{', '.join(others)} now also reach it")


def convert(root: Section, findings: Findings) -> Conversion:
    """The shipper configuration (``conv.document``) for the Fluentd tree ``root``."""
    conv = Conversion(findings)
    labels = _Labels()
    conv.document.top["state_dir"] = Commented(
        DEFAULT_STATE_DIR, "positions, disk buffers and dead letters (a hostPath volume)")
    for key, param in root.params.items():
        findings.warn(param.where, f"{key} outside any section is not converted")
    _sources(root.children, conv, labels)
    labels.collect_edges(root.children, None)
    _routes(root.children, conv, Scope(), labels, None)
    if not conv.document.sources:
        findings.warn(root.where, "no source could be converted; shipper needs at least one "
                                  "(a tail source of /var/log/containers/*.log)")
    if not conv.document.outputs:
        findings.warn(root.where, "no output could be converted; shipper needs at least one")
    _unreached(conv)
    _listeners(conv)
    return conv


def _unreached(conv: Conversion) -> None:
    """Outputs whose pattern no source's tags match receive nothing (a tag rewritten by a
    plugin shipper lacks, like rewrite_tag_filter, is the usual cause): say so, and say it
    loudly when that leaves nothing shipped at all."""
    if not conv.document.sources or not conv.document.outputs:
        return
    tags = sorted({_source_tags(c.body) for c in conv.document.sources.values()})
    unreached = [c for c in conv.document.outputs.values()
                 if isinstance(c.body.get("match"), str)
                 and not any(overlap(c.body["match"], t) for t in tags)]
    for component in unreached:
        conv.findings.warn(component.origin.split(" ", 1)[0],
                           f"output {component.name} (match {component.body['match']!r}) "
                           f"matches the tags of no source ({', '.join(tags)}); it receives "
                           "nothing in shipper")
    if len(unreached) == len(conv.document.outputs):
        conv.findings.warn(next(iter(conv.document.outputs.values())).origin.split(" ", 1)[0],
                           "no output matches the tags of any source: as converted, nothing "
                           "would be shipped")


def _listeners(conv: Conversion) -> None:
    """Two sources on one address could not both start (nor could Fluentd's): say which."""
    telemetry = conv.document.top.get("telemetry")
    listeners = []
    if isinstance(telemetry, dict) and isinstance(telemetry.get("listen"), str):
        listeners.append(("telemetry.listen", telemetry["listen"]))
    origins = {}
    for name, component in conv.document.sources.items():
        listen = component.body.get("listen")
        if isinstance(listen, str) and "$" not in listen:
            listeners.append((f"source {name}", listen))
            origins[f"source {name}"] = component.origin.split(" ", 1)[0]
    for problem in checks.shared_listeners(listeners):
        who = problem.split(" listens on ", 1)[0]
        conv.findings.warn(origins.get(who, "shipper.yaml:1"), problem)


def _sources(sections: list[Section], conv: Conversion, labels: _Labels) -> None:
    for section in sections:
        if section.name == "source":
            label = section.params.get("@label")
            if label is not None:
                conv.findings.note(label.where, f"@label {label.value.assumed()}: shipper "
                                                "routes by tag only; this source's records go "
                                                "to every filter and output whose pattern "
                                                "matches them")
            before = set(conv.document.sources)
            convert_source(section, conv, ignore=("@label",))
            label_name = label.value.assumed().strip() if label is not None else None
            for name in [n for n in conv.document.sources if n not in before]:
                labels.add(label_name, name, conv.document.sources[name].body)
        elif section.name == "system":
            _system(section, conv)
        elif section.name in ("label", "worker"):
            _sources(section.children, conv, labels)


def _routes(sections: list[Section], conv: Conversion, scope: Scope, labels: _Labels,
            label: str | None) -> None:
    for section in sections:
        if section.name in ("source", "system"):
            continue
        if section.name == "filter":
            pattern = pattern_of(section, conv)
            scope.check_filter(pattern, section, conv)
            labels.check(section, pattern, label, conv)
            convert_filter(section, pattern, conv)
        elif section.name == "match":
            pattern = pattern_of(section, conv)
            real = section.plugin in OUTPUT_PLUGINS
            if real:
                scope.check_output(pattern, section, conv)
                labels.check(section, pattern, label, conv)
            if convert_match(section, pattern, conv, ignore=("@label",)) and real:
                scope.add(pattern, section)
        elif section.name == "label":
            _label(section, conv, labels)
        elif section.name == "worker":
            conv.findings.warn(section.where, f"{section.title()}: shipper runs one process; "
                                              "its contents are converted for it")
            _routes(section.children, conv, scope, labels, label)
        else:
            conv.findings.warn(section.where, f"{section.title()}: unknown section; not "
                                              "converted")


def _label(section: Section, conv: Conversion, labels: _Labels) -> None:
    name = section.arg.assumed().strip()
    if name == "@FLUENT_LOG":
        conv.findings.note(section.where, "<label @FLUENT_LOG>: Fluentd's own logs; shipper "
                                          "writes its logs as JSON lines to stdout")
        return
    if name == "@ERROR":
        if section.children:
            conv.findings.warn(section.where, "<label @ERROR>: not converted; records a server "
                                              "rejects go to the dead-letter store "
                                              "(state_dir/dead-letter, with the reason)")
        return
    conv.findings.note(section.where, f"<label {name}>: converted in place; shipper routes by "
                                      "tag only, so its filters and outputs also see records "
                                      "of other sources whose tags match")
    _routes(section.children, conv, Scope(), labels, name)


def _system(section: Section, conv: Conversion) -> None:
    reader = SectionReader(section, conv)
    level = reader.param("log_level")
    if level is not None:
        text = level.value.assumed().strip()
        conv.document.top["log_level"] = _LOG_LEVELS.get(text, "info")
        if level.value.literal is None:
            reader.note(level, f"log_level depends on {', '.join(level.value.env_names)}; "
                               f"converted as {text!r}, its value when the variables are unset")
    workers = reader.param("workers")
    count = workers.value.assumed().strip() if workers is not None else ""
    if workers is not None and count not in ("", "1"):
        if count.isdigit() and 1 < int(count) <= MAX_WORKERS and workers.value.literal:
            conv.document.top["workers"] = int(count)
            reader.note(workers, f"workers {count} -> workers: {count} (worker processes "
                                 "share the tail files; forward and other network sources "
                                 "run in worker 0 only)")
        else:
            reader.warn(workers, f"workers {count!r}: not converted; shipper's workers is a "
                                 f"number from 1 to {MAX_WORKERS}")
    reader.skip(_SYSTEM_UNNEEDED, "not needed by shipper")
    for child in section.children:
        if child.name == "log":
            reader.note(child, "<log>: shipper's own logs are JSON lines on stdout")
        else:
            reader.warn(child, f"{child.title()} in <system>: not converted")
    reader.finish("shipper")
