"""Documentation that is generated or quoted must match the code."""

from __future__ import annotations

from options.document import render
from tests.helpers import ROOT


def test_option_reference_is_up_to_date():
    assert (ROOT / "docs" / "options.md").read_text() == render(), "run: python -m options.document > docs/options.md"


def test_readme_quick_start_commands_exist():
    readme = (ROOT / "README.md").read_text()
    assert "python3 quickstart.py demo" in readme and "python3 quickstart.py test" in readme
    assert "python3 quickstart.py test" in (ROOT / ".ci" / "run").read_text()
