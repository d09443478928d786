"""How the cluster fixture chooses its cluster (pure logic: no cluster is started here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cluster_support import KubeCluster, external_cluster, require_local_means


@pytest.mark.parametrize(
    ("is_debian", "euid", "fails"),
    [(True, 0, False), (True, 1000, True), (False, 0, True), (False, 1000, True)],
)
def test_no_cluster_and_no_means_fails_loudly(
    is_debian: bool, euid: int, fails: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    if not fails:
        require_local_means(is_debian, euid)
        return
    with pytest.raises(pytest.fail.Exception) as failure:
        require_local_means(is_debian, euid)
    assert "STOCKSTREAM_KUBECONFIG" in str(failure.value)
    assert "CI='true'" in str(failure.value)


def test_named_cluster_is_used_with_its_context(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kubeconfig = tmp_path / "kind.kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    monkeypatch.setenv("STOCKSTREAM_KUBECONFIG", str(kubeconfig))
    monkeypatch.setenv("STOCKSTREAM_KUBE_CONTEXT", "kind-dev")
    monkeypatch.setenv("STOCKSTREAM_KUBECTL", "/usr/bin/true")
    monkeypatch.setenv("STOCKSTREAM_REGISTRY", "localhost:5001")
    cluster = external_cluster()
    assert isinstance(cluster, KubeCluster)
    assert (cluster.kubeconfig, cluster.context, cluster.registry, cluster.own) == (
        kubeconfig,
        "kind-dev",
        "localhost:5001",
        False,
    )
    assert cluster.kubectl_argv("get", "nodes") == [
        "/usr/bin/true",
        "--kubeconfig",
        str(kubeconfig),
        "--context",
        "kind-dev",
        "get",
        "nodes",
    ]
    assert cluster.image("python:3.11") == "localhost:5001/stockstream/python:3.11"


def test_named_kubeconfig_that_is_missing_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STOCKSTREAM_KUBECONFIG", str(tmp_path / "absent"))
    with pytest.raises(pytest.fail.Exception, match="is not a file"):
        external_cluster()


def test_no_named_cluster_means_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STOCKSTREAM_KUBECONFIG", raising=False)
    assert external_cluster() is None
