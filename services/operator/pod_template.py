"""Merging the users' pod templates into the pods the operator generates (pure).

`spec.podTemplate` applies to every pod (dataflow, replay, ingestion); the dataflow's pods
take `spec.dataflow.podTemplate` over it (`overlay`), the way the Flink operator's
jobManager/taskManager pod templates go over its common one. Maps (labels, annotations,
nodeSelector) are merged key by key, the dataflow's winning; any other field the dataflow's
template gives replaces the common one (an empty list clears it), because lists such as
topologySpreadConstraints cannot be concatenated safely (the API server refuses two
constraints on the same topology key and effect).

`merged_into` adds a template to a generated pod template: the operator's own labels,
annotations and pod fields are written last, so they win (the spec's rules refuse those
labels and annotations already; the whitelist has no field the operator sets), and fields
left unset add nothing, so a StockStream without podTemplate gets the pod template,
and the cluster hash, it had before podTemplate existed: an operator upgrade restarts nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.operator.pod_template_spec import PodMetadata, PodSpec, PodTemplate

Obj = dict[str, Any]

MAPS = {"labels", "annotations", "node_selector"}


def _over(base: Any, top: Any) -> Any:
    """`top`'s fields over `base`'s (both of one SpecModel type, or None); maps merged.

    Not validated again: both parts were, and merged maps of valid keys and values are
    valid, but may hold more entries than either part may (64 labels and 64 more)."""
    if base is None or top is None:
        return top if base is None else base
    fields = dict(base)
    for name in top.model_fields_set:
        value = getattr(top, name)
        if name in MAPS and value is not None and fields.get(name) is not None:
            value = {**fields[name], **value}
        fields[name] = value
    return type(base).model_construct(
        _fields_set=base.model_fields_set | top.model_fields_set, **fields
    )


def overlay(common: PodTemplate | None, specific: PodTemplate | None) -> PodTemplate:
    """The template of pods that take `specific` over `common` (spec.dataflow.podTemplate
    over spec.podTemplate)."""
    c, s = common or PodTemplate(), specific or PodTemplate()
    return PodTemplate(
        metadata=_over(c.metadata, s.metadata) or PodMetadata(),
        spec=_over(c.spec, s.spec) or PodSpec(),
    )


def _given(model: Any) -> Obj:
    """The fields of `model` that were set and are not empty, by their API names."""
    if model is None:
        return {}
    dumped: Obj = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    return {k: v for k, v in dumped.items() if v not in ({}, [], ())}


def merged_into(pod: Obj, template: PodTemplate | None) -> Obj:
    """`pod` (a generated pod template: metadata, spec) with `template` merged in."""
    if template is None:
        return pod
    meta = _given(template.metadata)
    out_meta: Obj = dict(pod["metadata"])
    for key in ("labels", "annotations"):
        ours: Mapping[str, str] = pod["metadata"].get(key) or {}
        if meta.get(key):
            out_meta[key] = {**meta[key], **ours}
    return {**pod, "metadata": out_meta, "spec": {**_given(template.spec), **pod["spec"]}}
