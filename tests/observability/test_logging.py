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
# The ECS fields people filter on, as dotted paths.
SCHEMA_FIELDS = ("@timestamp", "log.level", "log.logger", "message", "service.name")


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


def get_path(record: dict, path: str) -> object:
    """`record`'s value at a dotted ECS path, whether the line nests it or not."""
    if path in record:
        return record[path]
    head, _, rest = path.partition(".")
    assert rest and isinstance(record.get(head), dict), f"{path} not in {record}"
    return get_path(record[head], rest)


def mapping_of(template: dict, path: str) -> dict:
    node: dict = template["template"]["mappings"]
    for part in path.split("."):
        node = node["properties"][part]
    return node


def test_the_services_log_the_ecs_fields(log_line: dict) -> None:
    for field in SCHEMA_FIELDS:
        assert get_path(log_line, field), f"log line lacks {field}: {log_line}"
    assert get_path(log_line, "service.name") == "replay"
    assert get_path(log_line, "log.level") == "info"
    assert log_line["stockstream"] == {"topic": "ticks"}, "extras go under stockstream.*"


def test_index_template_maps_the_schema(template: dict, log_line: dict) -> None:
    assert template["index_patterns"] == ["stockstream-logs-*"]
    assert mapping_of(template, "@timestamp")["type"] == "date"
    for field in ("log.level", "log.logger", "service.name", "stockstream.reason"):
        assert mapping_of(template, field)["type"] == "keyword", field
    assert mapping_of(template, "message")["type"] == "text"
    # Types both Elasticsearch and OpenSearch know (`flattened` is Elasticsearch's only).
    labels = mapping_of(template, "kubernetes.labels")
    assert labels == {"type": "object", "dynamic": True}
    for field in SCHEMA_FIELDS:
        mapping_of(template, field)


def test_every_extra_the_code_logs_has_a_compatible_mapping(template: dict) -> None:
    """The mapped extras are the names the call sites use (a typo would map nothing)."""
    sources = "\n".join(path.read_text() for folder in ("dataflows", "services", "stockstream")
                        for path in (REPO / folder).rglob("*.py"))
    logged = set(re.findall(r'"(\w+)":', " ".join(re.findall(r"extra=\{[^}]*\}", sources))))
    mapped = set(template["template"]["mappings"]["properties"]["stockstream"]["properties"])
    logged |= {"reason", "count", "reason_detail", "source_topic", "source_partition",
               "source_offset"}  # log_dead_letters builds its dict over several lines
    assert mapped <= logged, f"mapped but never logged: {mapped - logged}"


def test_fluent_bit_parses_the_ecs_timestamp_as_event_time(fluent_bit, log_line: dict) -> None:
    parsers = sections(LOGGING / "parsers.conf")
    parser = one(fluent_bit, "FILTER", "parser")
    definition = one(parsers, "PARSER", parser["parser"])
    assert definition["format"] == "json"
    assert definition["time_key"] == "@timestamp"
    # The es output writes the record time as @timestamp: keeping the key would duplicate it.
    assert definition["time_keep"].lower() == "off"
    # Fluent Bit's %L is the fraction of a second; the rest are the C conversions.
    datetime.strptime(log_line["@timestamp"], definition["time_format"].replace("%L", "%f"))
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


def test_grafana_log_data_source_reads_the_template_fields(template: dict) -> None:
    path = OBSERVABILITY / "grafana/provisioning/datasources/datasources.yaml"
    (source,) = [s for s in read_yaml(path)["datasources"] if s["type"] == "elasticsearch"]
    settings = source["jsonData"]
    assert settings["index"] in template["index_patterns"]
    assert mapping_of(template, settings["timeField"])["type"] == "date"
    assert mapping_of(template, settings["logLevelField"])["type"] == "keyword"
    assert mapping_of(template, settings["logMessageField"])["type"] == "text"
