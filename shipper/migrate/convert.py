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
from shipper.migrate.document import Commented
from shipper.migrate.filters import convert_filter
from shipper.migrate.findings import Findings
from shipper.migrate.model import Section
from shipper.migrate.outputs import convert_match
from shipper.migrate.reader import Conversion, SectionReader
from shipper.migrate.routing import Scope, pattern_of
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


def convert(root: Section, findings: Findings) -> Conversion:
    """The shipper configuration (``conv.document``) for the Fluentd tree ``root``."""
    conv = Conversion(findings)
    conv.document.top["state_dir"] = Commented(
        DEFAULT_STATE_DIR, "positions, disk buffers and dead letters (a hostPath volume)")
    for key, param in root.params.items():
        findings.warn(param.where, f"{key} outside any section is not converted")
    _sources(root.children, conv)
    _routes(root.children, conv, Scope())
    if not conv.document.sources:
        findings.warn(root.where, "no source could be converted; shipper needs at least one "
                                  "(a tail source of /var/log/containers/*.log)")
    if not conv.document.outputs:
        findings.warn(root.where, "no output could be converted; shipper needs at least one")
    _listeners(conv)
    return conv


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


def _sources(sections: list[Section], conv: Conversion) -> None:
    for section in sections:
        if section.name == "source":
            label = section.params.get("@label")
            if label is not None:
                conv.findings.note(label.where, f"@label {label.value.assumed()}: shipper "
                                                "routes by tag only; this source's records go "
                                                "to every filter and output whose pattern "
                                                "matches them")
            convert_source(section, conv, ignore=("@label",))
        elif section.name == "system":
            _system(section, conv)
        elif section.name in ("label", "worker"):
            _sources(section.children, conv)


def _routes(sections: list[Section], conv: Conversion, scope: Scope) -> None:
    for section in sections:
        if section.name in ("source", "system"):
            continue
        if section.name == "filter":
            pattern = pattern_of(section, conv)
            scope.check_filter(pattern, section, conv)
            convert_filter(section, pattern, conv)
        elif section.name == "match":
            pattern = pattern_of(section, conv)
            real = section.plugin in OUTPUT_PLUGINS
            if real:
                scope.check_output(pattern, section, conv)
            if convert_match(section, pattern, conv, ignore=("@label",)) and real:
                scope.add(pattern, section)
        elif section.name == "label":
            _label(section, conv)
        elif section.name == "worker":
            conv.findings.warn(section.where, f"{section.title()}: shipper runs one process; "
                                              "its contents are converted for it")
            _routes(section.children, conv, scope)
        else:
            conv.findings.warn(section.where, f"{section.title()}: unknown section; not "
                                              "converted")


def _label(section: Section, conv: Conversion) -> None:
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
    _routes(section.children, conv, Scope())


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
    if workers is not None and workers.value.assumed().strip() not in ("", "1"):
        reader.warn(workers, "workers: shipper runs one process per node")
    reader.skip(_SYSTEM_UNNEEDED, "not needed by shipper")
    for child in section.children:
        if child.name == "log":
            reader.note(child, "<log>: shipper's own logs are JSON lines on stdout")
        else:
            reader.warn(child, f"{child.title()} in <system>: not converted")
    reader.finish("shipper")
