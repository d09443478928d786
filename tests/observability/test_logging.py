"""The Filebeat pipeline, the index template and the Grafana data source of the JSON logs."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
import yaml

from tests.observability.conftest import read_yaml
from tests.observability.promql import OBSERVABILITY, REPO

LOGGING = OBSERVABILITY / "logging"
COMPONENT = REPO / "deploy/kustomize/components/logging"
# The ECS fields people filter on, as dotted paths.
SCHEMA_FIELDS = ("@timestamp", "log.level", "log.logger", "message", "service.name")


def read_yaml_all(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.fixture(scope="module")
def filebeat() -> dict:
    return read_yaml(LOGGING / "filebeat.yml")


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
    sources = "\n".join(
        path.read_text()
        for folder in ("dataflows", "services", "stockstream")
        for path in (REPO / folder).rglob("*.py")
    )
    logged = set(re.findall(r'"(\w+)":', " ".join(re.findall(r"extra=\{[^}]*\}", sources))))
    mapped = set(template["template"]["mappings"]["properties"]["stockstream"]["properties"])
    logged |= {
        "reason",
        "count",
        "reason_detail",
        "source_topic",
        "source_partition",
        "source_offset",
    }  # log_dead_letters builds its dict over several lines
    assert mapped <= logged, f"mapped but never logged: {mapped - logged}"


def test_filebeat_ships_the_two_namespaces_to_the_templated_index(
    filebeat: dict, template: dict
) -> None:
    (container,) = filebeat["filebeat.inputs"]
    assert container["type"] == "container" and container["format"] == "cri"
    assert container["paths"] == [
        "${STOCKSTREAM_CONTAINER_LOGS}/*_${STOCKSTREAM_NAMESPACE}_*.log",
        "${STOCKSTREAM_CONTAINER_LOGS}/*_${STOCKSTREAM_OPERATOR_NAMESPACE}_*.log",
    ]
    output = filebeat["output.elasticsearch"]
    assert output["index"].startswith("stockstream-logs-")
    assert output["index"].replace("%{+yyyy.MM.dd}", "*") in template["index_patterns"]
    # The template and the lifecycle are stockstream.log_index's, never Filebeat's own.
    assert filebeat["setup.template.enabled"] is False
    assert filebeat["setup.ilm.enabled"] is False


def test_filebeat_adds_the_pods_metadata_by_container_log_path(filebeat: dict) -> None:
    (metadata,) = [
        p["add_kubernetes_metadata"]
        for p in filebeat["processors"]
        if "add_kubernetes_metadata" in p
    ]
    (matcher,) = metadata["matchers"]
    # Filebeat's logs_path matcher takes the container id from the file name only under
    # /var/log/containers/, with the trailing slash.
    assert matcher["logs_path"]["logs_path"] == "${STOCKSTREAM_CONTAINER_LOGS}/"
    assert metadata["host"] == "${NODE_NAME:}"


def test_every_config_variable_is_provided_by_the_daemonset() -> None:
    used = set(re.findall(r"\$\{(\w+)[:}]", (LOGGING / "filebeat.yml").read_text()))
    kustomization = read_yaml(COMPONENT / "kustomization.yaml")
    (settings,) = [
        g for g in kustomization["configMapGenerator"] if g["name"] == "logging-settings"
    ]
    provided = {literal.split("=", 1)[0] for literal in settings["literals"]}
    daemonset = next(
        d for d in read_yaml_all(COMPONENT / "filebeat.yaml") if d["kind"] == "DaemonSet"
    )
    (container,) = daemonset["spec"]["template"]["spec"]["containers"]
    provided |= {env["name"] for env in container["env"]}
    assert used, "filebeat.yml reads no variables?"
    assert used <= provided, f"not set for the DaemonSet: {used - provided}"


def test_logging_configmaps_contain_every_file() -> None:
    kustomization = read_yaml(LOGGING / "kustomization.yaml")
    generated = {g["name"]: sorted(g["files"]) for g in kustomization["configMapGenerator"]}
    assert generated == {
        "filebeat-config": ["filebeat.yml"],
        "log-index-template": ["index-template.json"],
    }


def test_grafana_log_data_source_reads_the_template_fields(template: dict) -> None:
    path = OBSERVABILITY / "grafana/provisioning/datasources/datasources.yaml"
    (source,) = [s for s in read_yaml(path)["datasources"] if s["type"] == "elasticsearch"]
    settings = source["jsonData"]
    assert settings["index"] in template["index_patterns"]
    assert mapping_of(template, settings["timeField"])["type"] == "date"
    assert mapping_of(template, settings["logLevelField"])["type"] == "keyword"
    assert mapping_of(template, settings["logMessageField"])["type"] == "text"
