"""The environment the manifests give each Python component is what its settings class reads:
no misspelled or stale variable silently falls back to a default."""

from __future__ import annotations

import os
import re

import pytest

from tests.deploy.conftest import REPO, container, env_of, find

# Variables consumed by the entrypoint / Kubernetes plumbing, not by the settings classes.
PLUMBING = {
    "dataflow": {
        "DATAFLOW_REPLICAS",
        "DATAFLOW_PORT",
        "DATAFLOW_STATEFULSET",
        "DATAFLOW_SERVICE",
        "POD_NAME",
        "POD_NAMESPACE",
        "REDIS_PASSWORD",
    },
    "replay": set(),
    "ingest": set(),
}


def accepted_names(cls) -> set[str]:
    """Upper-case environment variable names a pydantic-settings class reads."""
    names = set()
    for field_name, field in cls.model_fields.items():
        names.add(field_name.upper())
        alias = field.validation_alias
        if alias is not None:
            choices = getattr(alias, "choices", [alias])
            names |= {str(choice).upper() for choice in choices}
    return names


def settings_class(component: str):
    if component == "dataflow":
        from dataflows.leaders.settings import DataflowSettings

        return DataflowSettings
    if component == "replay":
        from services.replay.settings import ReplaySettings

        return ReplaySettings
    from services.ingest.settings import IngestSettings

    return IngestSettings


def _workload(objs, component):
    kind = "Deployment" if component == "replay" else "StatefulSet"
    return find(objs, kind, component)


def _resolve(env: dict[str, str]) -> dict[str, str]:
    """Apply Kubernetes $(VAR) expansion, with a stand-in for values from Secrets/fields."""
    out = {k: ("secret" if v == "<from>" else v) for k, v in env.items()}
    for key, value in out.items():
        out[key] = re.sub(r"\$\((\w+)\)", lambda m: out.get(m.group(1), m.group(0)), value)
    return out


@pytest.mark.parametrize(
    ("where", "component"),
    [
        ("overlays/dev", "dataflow"),
        ("overlays/dev", "replay"),
        ("overlays/prod", "dataflow"),
        ("components/ingestion", "ingest"),
    ],
)
def test_every_variable_is_read_by_the_component(where: str, component: str, render) -> None:
    objs = render(where)
    env = env_of(objs, _workload(objs, component), component)
    accepted = accepted_names(settings_class(component)) | PLUMBING[component]
    unknown = set(env) - accepted
    assert not unknown, f"{component}: variables nobody reads: {sorted(unknown)}"


@pytest.mark.parametrize(
    ("where", "component"),
    [
        ("overlays/dev", "dataflow"),
        ("overlays/dev", "replay"),
        ("components/ingestion", "ingest"),
    ],
)
def test_settings_accept_the_rendered_environment(
    where: str, component: str, render, monkeypatch
) -> None:
    objs = render(where)
    env = _resolve(env_of(objs, _workload(objs, component), component))
    for key in list(os.environ):
        if key.upper() in accepted_names(settings_class(component)):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = settings_class(component)()
    assert settings.metrics_port == 9100
    if component == "dataflow":
        assert settings.redis_url == "redis://writer:secret@redis:6379/0"
        assert settings.recovery_dir == "/var/lib/stockstream/recovery"
        assert settings.workers_per_process == 1


@pytest.mark.parametrize(
    ("where", "component"),
    [
        ("overlays/dev", "replay"),
        ("components/ingestion", "ingest"),
    ],
)
def test_replay_file_is_baked_into_the_image(where: str, component: str, render) -> None:
    """The Dockerfile copies data/ to /app/data; the configured file must be in the repo."""
    objs = render(where)
    env = env_of(objs, _workload(objs, component), component)
    path = env["REPLAY_FILE"]
    assert path.startswith("/app/data/")
    assert (REPO / "data" / path.removeprefix("/app/data/")).is_file(), path
    assert "/app/data" in (REPO / "Dockerfile").read_text()


def test_ingest_symbols_file_is_the_configmap_mount(render) -> None:
    objs = render("components/ingestion")
    sts = find(objs, "StatefulSet", "ingest")
    env = env_of(objs, sts, "ingest")
    mounts = {m["name"]: m["mountPath"] for m in container(sts, "ingest")["volumeMounts"]}
    symbols = find(objs, "ConfigMap", "ingest-symbols")
    assert env["SYMBOLS_FILE"] == f"{mounts['symbols']}/symbols.txt"
    assert "symbols.txt" in symbols["data"]
    assert env["STATEFULSET_NAME"] == sts["metadata"]["name"]
    role = find(objs, "Role", "ingest")
    (rule,) = role["rules"]
    assert rule["resourceNames"] == [sts["metadata"]["name"]]
    assert set(rule["verbs"]) <= {"get", "list", "watch"}
