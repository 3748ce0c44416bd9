from pathlib import Path

from shipper.app import OUTPUT_TYPES, SOURCE_TYPES
from shipper.config.docgen import missing_docs, render_agent_docs

DOCS = Path(__file__).resolve().parents[2] / "docs" / "CONFIG.md"


def test_every_config_field_is_documented():
    assert missing_docs({**SOURCE_TYPES, **OUTPUT_TYPES}) == []


def test_committed_reference_matches_the_config_models():
    expected = render_agent_docs(SOURCE_TYPES, OUTPUT_TYPES)
    assert DOCS.read_text() == expected, "run `make docs` to regenerate docs/CONFIG.md"
