"""The config reference is rendered from the dataclasses, so it cannot drift from the loader."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from shipper.config.docgen import missing_docs, render_agent_docs, render_config_docs
from shipper.config.model import AgentConfig
from shipper.config.types import Bytes, Seconds


@dataclass(frozen=True)
class Retry:
    """When to try again."""

    backoff_secs: Seconds = field(default=0.5, metadata={"doc": "First delay."})


@dataclass(frozen=True)
class Target:
    """Where records go.

    Everything after the first paragraph stays out of the reference.
    """

    url: str = field(metadata={"doc": "Base URL | with a pipe."})
    token: str | None = field(default=None, repr=False,
                              metadata={"doc": "API token.", "secret": True})
    limit_bytes: Bytes = field(default=2 * 1024 * 1024, metadata={"doc": "Request size cap."})
    mode: Literal["fast", "safe"] = field(default="safe", metadata={"doc": "Trade-off."})
    headers: dict[str, str] = field(default_factory=dict, metadata={"doc": "Extra headers."})
    retries: list[Retry] = field(default_factory=list, metadata={"doc": "Retry policies."})
    undocumented: bool = False


def test_each_dataclass_is_a_table_and_nested_ones_follow_under_their_key_path() -> None:
    docs = render_config_docs({"output type: target": Target})
    section = docs[docs.index("## `output type: target`"):]
    assert section == "\n".join([
        "## `output type: target`",
        "",
        "Where records go.",
        "",
        "| key | type | default | description |",
        "| --- | --- | --- | --- |",
        "| `url` | string | **required** | Base URL \\| with a pipe. |",
        "| `token` | string or null | `null` | API token. Secret: never shown in messages or "
        "dumps. |",
        "| `limit_bytes` | size | `2MiB` | Request size cap. |",
        "| `mode` | one of `fast`, `safe` | `\"safe\"` | Trade-off. |",
        "| `headers` | map of string to string | `{}` | Extra headers. |",
        "| `retries` | list of mapping | `[]` | Retry policies. |",
        "| `undocumented` | boolean | `false` |  |",
        "",
        "### `output type: target.retries[]`",
        "",
        "When to try again.",
        "",
        "| key | type | default | description |",
        "| --- | --- | --- | --- |",
        "| `backoff_secs` | duration | `500ms` | First delay. |",
        "",
    ])


def test_the_reference_starts_with_the_conventions_every_key_follows() -> None:
    docs = render_config_docs({}, title="Config")
    assert docs.startswith("# Config\n\nConventions that hold for every key:\n")
    assert "`${NAME:-default}`" in docs


def test_the_agent_config_documents_its_keys_but_not_internal_ones() -> None:
    docs = render_config_docs({"shipper.yaml": AgentConfig})
    assert "| `sources` | map of name to source | **required** |" in docs
    assert "| `shutdown_deadline_secs` | duration | `25s` |" in docs
    assert "### `shipper.yaml.telemetry`" in docs
    assert "config_file" not in docs


def test_every_field_of_the_agent_config_is_documented() -> None:
    assert missing_docs({"shipper.yaml": AgentConfig}) == []


def test_undocumented_fields_are_listed_by_key_path() -> None:
    assert missing_docs({"target": Target}) == ["target.undocumented"]


def test_the_agent_reference_documents_every_registered_type_after_the_top_level_keys() -> None:
    docs = render_agent_docs({"target": Target}, {"retry": Retry, "another": Retry})
    headings = [line for line in docs.splitlines() if line.startswith("#")]
    assert headings == [
        "# Configuration reference",
        "## `shipper.yaml`",
        "### `shipper.yaml.telemetry`",
        "#### `shipper.yaml.telemetry.tap`",
        "## `sources.<name>` with `type: target`",
        "### `sources.<name>.retries[]`",
        "## `outputs.<name>` with `type: another`",
        "## `outputs.<name>` with `type: retry`",
    ]
