"""Fluent Bit pipeline and Elasticsearch index template for the JSON logs."""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime
from pathlib import Path

import pytest

from tests.observability.conftest import read_yaml
from tests.observability.promql import OBSERVABILITY, REPO

LOGGING = OBSERVABILITY / "logging"
COMPONENT = REPO / "deploy/kustomize/components/logging"
SCHEMA_FIELDS = ("ts", "level", "logger", "message", "service")


def sections(path: Path) -> list[tuple[str, dict[str, str]]]:
    """Fluent Bit classic-format sections as (NAME, {key: value}), keys lower-cased."""
    out: list[tuple[str, dict[str, str]]] = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        header = re.fullmatch(r"\[([A-Z]+)\]", line)
        if header:
            out.append((header.group(1), {}))
            continue
        assert out, f"{path.name}: entry outside a section: {raw!r}"
        assert raw.startswith("    "), f"{path.name}: entries are indented 4 spaces: {raw!r}"
        key, _, value = line.partition(" ")
        out[-1][1][key.lower()] = value.strip()
    return out


@pytest.fixture(scope="module")
def fluent_bit() -> list[tuple[str, dict[str, str]]]:
    return sections(LOGGING / "fluent-bit.conf")


@pytest.fixture(scope="module")
def template() -> dict:
    return json.loads((LOGGING / "index-template.json").read_text())


@pytest.fixture
def log_line(capsys: pytest.CaptureFixture[str]) -> dict:
    """One line as the services write it (stockstream.logs.configure_logging)."""
    from stockstream.logs import configure_logging

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("replay", "INFO")
        logging.getLogger("services.replay").info("replay starting", extra={"topic": "ticks"})
    finally:
        root.handlers[:], root.level = saved
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def one(sections_: list[tuple[str, dict[str, str]]], kind: str, name: str) -> dict[str, str]:
    found = [s for k, s in sections_ if k == kind and s.get("name") == name]
    assert len(found) == 1, f"expected one [{kind}] {name}"
    return found[0]


def test_the_services_log_the_schema_fields(log_line: dict) -> None:
    for field in SCHEMA_FIELDS:
        assert field in log_line, f"log line lacks {field}: {log_line}"


def test_index_template_maps_the_schema(template: dict) -> None:
    assert template["index_patterns"] == ["stockstream-logs-*"]
    props = template["template"]["mappings"]["properties"]
    assert props["@timestamp"]["type"] == "date"
    assert props["ts"]["type"] == "date"
    for field in ("level", "logger", "service"):
        assert props[field]["type"] == "keyword"
    assert props["message"]["type"] == "text"
    assert props["kubernetes"]["properties"]["labels"]["type"] == "flattened"


def _java_to_strptime(pattern: str) -> str:
    tokens = [("yyyy", "%Y"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"), ("mm", "%M"),
              ("ss", "%S"), (".SSS", ".%f"), ("'T'", "T"), ("Z", "%z")]
    out = pattern
    for java, py in tokens:
        out = out.replace(java, py)
    leftover = re.sub(r"%[A-Za-z]", "", out)
    assert "'" not in out and not re.search(r"[A-SU-Za-z]", leftover), f"unsupported: {pattern}"
    return out


def test_index_template_parses_the_services_timestamp(template: dict, log_line: dict) -> None:
    formats = template["template"]["mappings"]["properties"]["ts"]["format"].split("||")
    custom = [f for f in formats if "yyyy" in f]
    parsed = []
    for fmt in custom:
        try:
            parsed.append(datetime.strptime(log_line["ts"], _java_to_strptime(fmt)))
        except ValueError:
            continue
    assert parsed, f"no date format of the template parses {log_line['ts']!r}: {formats}"


def test_fluent_bit_parses_ts_as_event_time(fluent_bit, log_line: dict) -> None:
    parsers = sections(LOGGING / "parsers.conf")
    parser = one(fluent_bit, "FILTER", "parser")
    definition = one(parsers, "PARSER", parser["parser"])
    assert definition["format"] == "json"
    assert definition["time_key"] == "ts"
    assert definition["time_keep"].lower() == "on"
    # Fluent Bit's strptime uses the C conversions, same as Python's for these.
    datetime.strptime(log_line["ts"], definition["time_format"])
    service = dict(fluent_bit)["SERVICE"]
    assert service["parsers_file"] == "/fluent-bit/etc/stockstream/parsers.conf"


def test_fluent_bit_ships_to_the_templated_index(fluent_bit, template: dict) -> None:
    output = one(fluent_bit, "OUTPUT", "es")
    assert output["match"] == "kube.*"
    assert output["logstash_format"] == "On"
    assert f"{output['logstash_prefix']}-*" in template["index_patterns"]
    assert output["time_key"] == "@timestamp"
    tail = one(fluent_bit, "INPUT", "tail")
    assert tail["path"] == "/var/log/containers/*_${STOCKSTREAM_NAMESPACE}_*.log"
    assert "cri" in tail["multiline.parser"]
    assert tail["db"].startswith("/var/fluent-bit/state/")
    assert dict(fluent_bit)["SERVICE"]["storage.path"].startswith("/var/fluent-bit/state/")


def test_lua_filter_is_shipped_and_defines_its_function(fluent_bit) -> None:
    lua = one(fluent_bit, "FILTER", "lua")
    script = Path(lua["script"])
    assert script.parent == Path("/fluent-bit/etc/stockstream")
    text = (LOGGING / script.name).read_text()
    assert re.search(rf"^function {lua['call']}\(tag, timestamp, record\)$", text, re.M)
    for field in ("message", "service", "level", "logger"):
        assert f'record["{field}"]' in text


def test_every_config_variable_is_provided_by_the_component() -> None:
    used = set(re.findall(r"\$\{(\w+)\}", (LOGGING / "fluent-bit.conf").read_text()))
    kustomization = read_yaml(COMPONENT / "kustomization.yaml")
    (settings,) = [
        g for g in kustomization["configMapGenerator"] if g["name"] == "logging-settings"
    ]
    provided = {literal.split("=", 1)[0] for literal in settings["literals"]}
    assert used, "fluent-bit.conf reads no variables?"
    assert used <= provided, f"not in logging-settings: {used - provided}"


def test_logging_configmaps_contain_every_file() -> None:
    kustomization = read_yaml(LOGGING / "kustomization.yaml")
    generated = {g["name"]: sorted(g["files"]) for g in kustomization["configMapGenerator"]}
    assert generated["fluent-bit-config"] == ["fluent-bit.conf", "parsers.conf", "stockstream.lua"]
    assert generated["elasticsearch-index-template"] == ["index-template.json"]


def test_sections_parser_rejects_broken_config(tmp_path: Path) -> None:
    broken = tmp_path / "broken.conf"
    broken.write_text("Name tail\n[INPUT]\n    Name tail\n")
    with pytest.raises(AssertionError):
        sections(broken)
