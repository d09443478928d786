"""The README documents every setting and the test command CI runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from dataflows.leaders.local import LocalRunSettings
from dataflows.leaders.settings import DataflowSettings
from services.ingest.settings import IngestSettings
from services.replay.settings import ReplaySettings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


@pytest.mark.parametrize(
    ("settings", "readme"),
    [
        (DataflowSettings, "README.md"),
        (ReplaySettings, "README.md"),
        (LocalRunSettings, "README.md"),
        (IngestSettings, "services/ingest/README.md"),
    ],
)
def test_every_setting_is_documented(settings: type[BaseSettings], readme: str) -> None:
    text = (ROOT / readme).read_text()
    missing = [name.upper() for name in settings.model_fields if f"`{name.upper()}`" not in text]
    assert not missing, f"{settings.__name__}: {readme} lacks {missing}"


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci/run").read_text()
    assert "exec ./scripts/test.sh" in ci
    assert "`./scripts/test.sh`" in README and "`./scripts/run-local.sh`" in README
