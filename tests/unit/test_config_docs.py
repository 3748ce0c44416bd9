from pathlib import Path

from shipper.app import FILTER_TYPES, OUTPUT_TYPES, SOURCE_TYPES, render_config_reference
from shipper.config.docgen import missing_docs

DOCS = Path(__file__).resolve().parents[2] / "docs" / "CONFIG.md"


def test_every_config_field_is_documented():
    assert missing_docs({**SOURCE_TYPES, **OUTPUT_TYPES, **FILTER_TYPES}) == []


def test_committed_reference_matches_the_config_models():
    expected = render_config_reference()
    assert DOCS.read_text() == expected, "run `make docs` to regenerate docs/CONFIG.md"
