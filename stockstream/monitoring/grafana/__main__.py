"""`python -m stockstream.monitoring.grafana [--check]`: write the generated Grafana files into
observability/grafana/ (with `--check`: exit 1 if a committed file differs)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from stockstream.cli import check_arguments
from stockstream.monitoring.grafana import alert_rules, dashboard
from stockstream.monitoring.timescale import REPO, rule_files

GRAFANA = REPO / "observability/grafana"
DASHBOARD_FILE = GRAFANA / "dashboards/stockstream-pipeline.json"
ALERTS_FILE = GRAFANA / "provisioning/alerting/stockstream-alerts.json"


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def generated() -> dict[Path, str]:
    """Every generated file and its content."""
    return {
        DASHBOARD_FILE: render(dashboard.build()),
        ALERTS_FILE: render(alert_rules.build(rule_files())),
    }


def main(argv: list[str]) -> int:
    check_arguments(
        "stockstream grafana",
        __doc__,
        argv,
        flags={"--check": "exit 1 if a committed file differs; write nothing"},
    )
    stale = []
    for path, text in generated().items():
        if "--check" in argv:
            if not path.is_file() or path.read_text() != text:
                stale.append(path)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(REPO)}")
    for path in stale:
        print(f"stale: {path.relative_to(REPO)} (run python -m stockstream.monitoring.grafana)")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
