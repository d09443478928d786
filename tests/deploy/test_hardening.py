"""Hardening of every pod in every rendered target: non-root, read-only root filesystem, no
capabilities, seccomp, resources, probes; and the "restricted" Pod Security Standard for
namespaces that enforce it."""

from __future__ import annotations

import copy
import re

import pytest

from tests.deploy.conftest import find, pod_spec, workloads

# Workloads allowed to run as uid 0, with why. Everything else about them is still checked,
# and they must live in a namespace that does not enforce baseline/restricted.
ROOT_ALLOWED = {
    ("DaemonSet", "filebeat"): "reads root-owned 0640 container logs from the node (hostPath)",
}
HOSTPATH_ALLOWED = {("DaemonSet", "filebeat")}
# Containers allowed a writable root filesystem, with why.
WRITABLE_ROOT_ALLOWED = {
    ("StatefulSet", "opensearch"): "writes its keystore into the image's config directory at "
    "the first start (components/opensearch, development only)",
}
LONG_RUNNING = {"Deployment", "StatefulSet", "DaemonSet"}
PSS_RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
    "name",
}

_QUANTITY = re.compile(r"^([0-9.]+)(m|k|Ki|M|Mi|G|Gi|T|Ti)?$")
_FACTOR = {
    None: 1,
    "m": 1e-3,
    "k": 1e3,
    "Ki": 1024,
    "M": 1e6,
    "Mi": 1024**2,
    "G": 1e9,
    "Gi": 1024**3,
    "T": 1e12,
    "Ti": 1024**4,
}


def quantity(value) -> float:
    match = _QUANTITY.match(str(value))
    assert match, f"bad quantity {value!r}"
    return float(match.group(1)) * _FACTOR[match.group(2)]


def _effective(pod_sc: dict, c_sc: dict, key: str):
    return c_sc.get(key, pod_sc.get(key))


def hardening_violations(  # noqa: PLR0912 - a flat checklist, one `if` per hardening rule
    kind: str, name: str, spec: dict
) -> list[str]:
    """What is wrong with one pod spec (empty when hardened)."""
    problems = []
    exempt_root = (kind, name) in ROOT_ALLOWED
    pod_sc = spec.get("securityContext", {})
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(flag):
            problems.append(f"{flag} is set")
    for volume in spec.get("volumes", []):
        if "hostPath" in volume and (kind, name) not in HOSTPATH_ALLOWED:
            problems.append(f"hostPath volume {volume['name']}")
    if spec.get("automountServiceAccountToken") is not False and not spec.get("serviceAccountName"):
        problems.append(
            "mounts the default ServiceAccount token (set automountServiceAccountToken: false)"
        )
    for c in spec.get("initContainers", []) + spec["containers"]:
        where = f"container {c['name']}"
        sc = c.get("securityContext", {})
        if not exempt_root:
            if _effective(pod_sc, sc, "runAsNonRoot") is not True:
                problems.append(f"{where}: runAsNonRoot is not true")
            uid = _effective(pod_sc, sc, "runAsUser")
            if not isinstance(uid, int) or uid == 0:
                problems.append(f"{where}: needs a numeric non-zero runAsUser")
        if sc.get("readOnlyRootFilesystem") is not True and (
            (kind, name) not in WRITABLE_ROOT_ALLOWED
        ):
            problems.append(f"{where}: readOnlyRootFilesystem is not true")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}: allowPrivilegeEscalation is not false")
        if sc.get("privileged"):
            problems.append(f"{where}: privileged")
        caps = sc.get("capabilities", {})
        if "ALL" not in caps.get("drop", []):
            problems.append(f"{where}: capabilities.drop lacks ALL")
        if caps.get("add"):
            problems.append(f"{where}: adds capabilities {caps['add']}")
        seccomp = _effective(pod_sc, sc, "seccompProfile") or {}
        if seccomp.get("type") not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{where}: seccompProfile is not RuntimeDefault")
        resources = c.get("resources", {})
        for res in ("cpu", "memory"):
            request = resources.get("requests", {}).get(res)
            limit = resources.get("limits", {}).get(res)
            if request is None or limit is None:
                problems.append(f"{where}: {res} request and limit required")
            elif quantity(request) > quantity(limit):
                problems.append(f"{where}: {res} request {request} > limit {limit}")
        if kind in LONG_RUNNING and c in spec["containers"]:
            for probe in ("livenessProbe", "readinessProbe"):
                if probe not in c:
                    problems.append(f"{where}: no {probe}")
        for port in c.get("ports", []):
            if "hostPort" in port:
                problems.append(f"{where}: hostPort {port['hostPort']}")
    return problems


def pss_restricted_violations(spec: dict) -> list[str]:  # noqa: PLR0912 - one `if` per PSS check
    """The checks of the "restricted" Pod Security Standard (v1.30) that apply to pod specs."""
    problems = []
    pod_sc = spec.get("securityContext", {})
    for volume in spec.get("volumes", []):
        kinds = set(volume) - PSS_RESTRICTED_VOLUMES
        if kinds:
            problems.append(f"volume {volume['name']} of type {kinds}")
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(flag):
            problems.append(flag)
    for c in spec.get("initContainers", []) + spec["containers"]:
        sc = c.get("securityContext", {})
        if _effective(pod_sc, sc, "runAsNonRoot") is not True:
            problems.append(f"{c['name']}: runAsNonRoot")
        if _effective(pod_sc, sc, "runAsUser") == 0:
            problems.append(f"{c['name']}: runAsUser 0")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{c['name']}: allowPrivilegeEscalation")
        if sc.get("privileged"):
            problems.append(f"{c['name']}: privileged")
        caps = sc.get("capabilities", {})
        if "ALL" not in caps.get("drop", []):
            problems.append(f"{c['name']}: drop ALL")
        if set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
            problems.append(f"{c['name']}: adds {caps['add']}")
        seccomp = _effective(pod_sc, sc, "seccompProfile") or {}
        if seccomp.get("type") not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{c['name']}: seccompProfile")
        if any("hostPort" in p for p in c.get("ports", [])):
            problems.append(f"{c['name']}: hostPort")
    return problems


def test_every_pod_is_hardened(target: str, render) -> None:
    failures = []
    for obj in workloads(render(target)):
        kind, name = obj["kind"], obj["metadata"]["name"]
        for problem in hardening_violations(kind, name, pod_spec(obj)):
            failures.append(f"{kind}/{name}: {problem}")
    assert not failures, "\n".join(failures)


def test_pods_in_restricted_namespaces_pass_the_restricted_standard(target: str, render) -> None:
    objs = render(target)
    enforce = {
        o["metadata"]["name"]: (
            o["metadata"].get("labels", {}).get("pod-security.kubernetes.io/enforce")
        )
        for o in objs
        if o["kind"] == "Namespace"
    }
    failures = []
    for obj in workloads(objs):
        level = enforce.get(obj["metadata"].get("namespace"))
        if (obj["kind"], obj["metadata"]["name"]) in ROOT_ALLOWED:
            assert level in (None, "privileged"), (
                f"{obj['metadata']['name']} needs a privileged namespace, not {level!r}"
            )
            continue
        if level == "restricted" or target == "base" or target.startswith("components/"):
            # Everything but the exemptions must be deployable into a restricted namespace.
            failures += [
                f"{obj['kind']}/{obj['metadata']['name']}: {p}"
                for p in pss_restricted_violations(pod_spec(obj))
            ]
    assert not failures, "\n".join(failures)


def test_application_namespaces_enforce_restricted(render) -> None:
    for overlay in ("overlays/dev", "overlays/prod"):
        ns = find(render(overlay), "Namespace", "stockstream")
        assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_python_components_run_as_the_image_user(render) -> None:
    """The image's USER (Dockerfile) and the manifests agree: uid/gid 10001."""
    for obj in workloads(render("overlays/dev")):
        if any(c["image"] == "stockstream" for c in pod_spec(obj)["containers"]):
            sc = pod_spec(obj)["securityContext"]
            assert (sc["runAsUser"], sc["runAsGroup"]) == (10001, 10001), obj["metadata"]["name"]


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        (lambda c, s: c["securityContext"].pop("readOnlyRootFilesystem"), "readOnlyRootFilesystem"),
        (
            lambda c, s: c["securityContext"].update(allowPrivilegeEscalation=True),
            "allowPrivilegeEscalation",
        ),
        (lambda c, s: c["securityContext"]["capabilities"].update(drop=[]), "drop"),
        (lambda c, s: c["securityContext"]["capabilities"].update(add=["NET_ADMIN"]), "NET_ADMIN"),
        (lambda c, s: s["securityContext"].update(runAsUser=0), "runAsUser"),
        (lambda c, s: s["securityContext"].pop("runAsNonRoot"), "runAsNonRoot"),
        (lambda c, s: s["securityContext"].pop("seccompProfile"), "seccompProfile"),
        (lambda c, s: c["resources"].pop("limits"), "limit"),
        (lambda c, s: c["resources"]["requests"].update(memory="10Gi"), "request"),
        (lambda c, s: c.pop("livenessProbe"), "livenessProbe"),
        (lambda c, s: c.pop("readinessProbe"), "readinessProbe"),
        (lambda c, s: s.update(hostNetwork=True), "hostNetwork"),
        (lambda c, s: s.pop("automountServiceAccountToken"), "ServiceAccount"),
        (lambda c, s: s["volumes"].append({"name": "h", "hostPath": {"path": "/"}}), "hostPath"),
    ],
)
def test_checks_catch_a_weakened_pod(breakage, expected: str, render) -> None:
    """The checkers are not vacuous: break one property of the dataflow pod, get a finding."""
    sts = copy.deepcopy(find(render("overlays/dev"), "StatefulSet", "dataflow"))
    spec = pod_spec(sts)
    assert hardening_violations("StatefulSet", "dataflow", spec) == []
    breakage(spec["containers"][0], spec)
    problems = [
        *hardening_violations("StatefulSet", "dataflow", spec),
        *pss_restricted_violations(spec),
    ]
    assert any(expected in p for p in problems), problems
