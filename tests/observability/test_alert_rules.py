"""Alert rules: promtool validity and unit tests, required labels/annotations, runbooks, and
unit tests that pin every alert's `for:` boundary."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.observability.conftest import ALERTS, PROMETHEUS, RULE_FILES, RULE_TEST_FILES, read_yaml
from tests.observability.promql import (
    KNOWN_METRICS,
    OBSERVABILITY,
    REPO,
    SYNTHETIC_METRICS,
    duration_s,
    format_duration,
    metric_names,
)

RUNBOOKS = OBSERVABILITY / "runbooks"
SEVERITIES = {"critical", "warning", "info"}
RUNBOOK_SECTIONS = ("## Meaning", "## Impact", "## Diagnosis", "## Mitigation")


def run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def test_there_are_rules_and_tests() -> None:
    assert RULE_FILES, "no rule files in observability/prometheus/rules"
    assert RULE_TEST_FILES, "no promtool test files in observability/prometheus/tests"
    assert len(ALERTS) >= 10


def test_promtool_check_rules(promtool: str) -> None:
    proc = run([promtool, "check", "rules", *map(str, RULE_FILES)])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_promtool_unit_tests_pass(promtool: str) -> None:
    proc = run([promtool, "test", "rules", *map(str, RULE_TEST_FILES)])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_alert_names_are_unique() -> None:
    names = [a["alert"] for a in ALERTS]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("rule_file", RULE_FILES, ids=lambda p: p.name)
def test_every_rule_file_has_a_unit_test_file(rule_file: Path) -> None:
    test_file = PROMETHEUS / "tests" / f"{rule_file.stem}_test.yaml"
    assert test_file.exists(), f"missing {test_file.relative_to(REPO)}"
    referenced = read_yaml(test_file)["rule_files"]
    assert f"../rules/{rule_file.name}" in referenced


def test_alert_labels_and_annotations(alert: dict) -> None:
    name = alert["alert"]
    assert re.fullmatch(r"Stockstream[A-Z][A-Za-z0-9]+", name), name
    assert alert.get("labels", {}).get("severity") in SEVERITIES
    annotations = alert.get("annotations", {})
    for key in ("summary", "description", "runbook_url"):
        assert str(annotations.get(key, "")).strip(), f"{name}: annotation {key} missing"
    assert "for" in alert, f"{name}: alerts need a `for:` to ride out single bad scrapes"
    duration_s(alert["for"])


def test_runbook_url_points_to_an_existing_runbook(alert: dict) -> None:
    name = alert["alert"]
    url = alert["annotations"]["runbook_url"]
    assert url.endswith(f"/observability/runbooks/{name}.md"), url
    runbook = RUNBOOKS / f"{name}.md"
    assert runbook.is_file(), f"missing {runbook.relative_to(REPO)}"
    text = runbook.read_text()
    assert text.startswith(f"# {name}\n"), f"{runbook.name} must start with '# {name}'"
    for section in RUNBOOK_SECTIONS:
        assert section in text, f"{runbook.name} lacks '{section}'"


def test_runbook_urls_share_one_base() -> None:
    bases = {a["annotations"]["runbook_url"].rsplit("/", 1)[0] for a in ALERTS}
    assert len(bases) == 1, bases


def test_no_orphan_runbooks_and_index_is_complete() -> None:
    names = {a["alert"] for a in ALERTS}
    pages = {p.stem for p in RUNBOOKS.glob("*.md")} - {"README"}
    assert pages == names
    index = (RUNBOOKS / "README.md").read_text()
    for name in names:
        assert f"[{name}]({name}.md)" in index, f"runbooks/README.md does not list {name}"


def test_alert_expressions_use_exported_metrics(alert: dict) -> None:
    used = metric_names(alert["expr"])
    assert used, f"{alert['alert']}: no metric found in {alert['expr']!r}"
    unknown = used - KNOWN_METRICS - SYNTHETIC_METRICS
    assert not unknown, f"{alert['alert']} uses unknown metrics {unknown}"


def _alert_tests(name: str) -> list[tuple[int, bool]]:
    """(eval time in s, expects firing) of every promtool alert_rule_test of `name`."""
    cases = []
    for path in RULE_TEST_FILES:
        for test in read_yaml(path)["tests"]:
            for case in test.get("alert_rule_test", []):
                if case["alertname"] == name:
                    cases.append((duration_s(case["eval_time"]), bool(case.get("exp_alerts"))))
    return cases


def test_alert_has_quiet_and_firing_unit_tests_one_interval_apart(alert: dict) -> None:
    """The unit tests check the alert silent one evaluation before it fires and firing at
    the first evaluation after its `for:` elapsed (the exact boundary is proven by
    test_unit_tests_pin_the_for_duration)."""
    cases = _alert_tests(alert["alert"])
    firing = sorted(t for t, fires in cases if fires)
    quiet = {t for t, fires in cases if not fires}
    assert firing, f"no unit test expects {alert['alert']} to fire"
    interval = _evaluation_interval(alert["_file"])
    assert firing[0] - interval in quiet, (
        f"{alert['alert']}: no 'exp_alerts: []' case at {firing[0] - interval}s, one "
        f"evaluation before the first firing case at {firing[0]}s"
    )


def _evaluation_interval(rule_file: Path) -> int:
    test_file = PROMETHEUS / "tests" / f"{rule_file.stem}_test.yaml"
    return duration_s(read_yaml(test_file).get("evaluation_interval", "1m"))


def _with_for(rule_file: Path, name: str, new_for: str) -> str:
    data = yaml.safe_load(rule_file.read_text())
    for group in data["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == name:
                rule["for"] = new_for
    return yaml.safe_dump(data, sort_keys=False)


@pytest.mark.parametrize("delta", [-1, +1], ids=["shorter", "longer"])
def test_unit_tests_pin_the_for_duration(
    alert: dict, delta: int, promtool: str, tmp_path: Path
) -> None:
    """Shift the alert's `for:` by one evaluation interval: its unit tests must then fail
    (fires too early -> the quiet case fails; too late -> the firing case fails).
    Only the test groups that mention the alert are run (groups are independent, and
    test_promtool_unit_tests_pass runs them all unmodified)."""
    name = alert["alert"]
    rule_file = alert["_file"]
    interval = _evaluation_interval(rule_file)
    shifted = duration_s(alert["for"]) + delta * interval
    assert shifted > 0
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    shifted_rules = _with_for(rule_file, name, format_duration(shifted))
    (tmp_path / "rules" / rule_file.name).write_text(shifted_rules)
    unit = read_yaml(PROMETHEUS / "tests" / f"{rule_file.stem}_test.yaml")
    unit["tests"] = [
        test
        for test in unit["tests"]
        if any(case["alertname"] == name for case in test.get("alert_rule_test", []))
    ]
    (tmp_path / "tests" / "mutant_test.yaml").write_text(yaml.safe_dump(unit, sort_keys=False))

    proc = run([promtool, "test", "rules", "tests/mutant_test.yaml"], cwd=tmp_path)
    assert proc.returncode != 0, (
        f"{name} with for: {format_duration(shifted)} still passes its unit tests; "
        "they do not pin the firing boundary"
    )
    assert name in proc.stdout + proc.stderr


def test_k8s_rules_configmap_lists_every_rule_file() -> None:
    kustomization = read_yaml(PROMETHEUS / "kustomization.yaml")
    generators = {g["name"]: g for g in kustomization["configMapGenerator"]}
    listed = sorted(generators["prometheus-rules"]["files"])
    assert listed == sorted(f"rules/{p.name}" for p in RULE_FILES)
    assert generators["prometheus-config"]["files"] == ["prometheus.yml"]


def test_metric_list_matches_the_code() -> None:
    """Every metric the rules and dashboards may use is exported by stockstream.metrics."""
    from prometheus_client import REGISTRY

    import stockstream.metrics  # noqa: F401 - registers the metrics

    exported = set()
    for family in REGISTRY.collect():
        if family.type == "counter":
            exported.add(f"{family.name}_total")
        elif family.type == "histogram":
            exported |= {f"{family.name}{s}" for s in ("_bucket", "_sum", "_count")}
        else:
            exported.add(family.name)
    missing = KNOWN_METRICS - exported
    assert not missing, f"metrics used by observability/ but not exported by the code: {missing}"
