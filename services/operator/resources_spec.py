"""`spec.dataflow.resources`: typed requests and limits of the dataflow container.

Each value is a Kubernetes quantity as the API server stores it: a string (`500m`, `1Gi`) or
an integer (YAML `cpu: 2`), x-kubernetes-int-or-string like every controller-gen CRD, and kept
as given, so a StockStream's generated pod template (and its cluster hash) is the same as
when `resources` was an unchecked object. A quantity is checked by CEL (`isQuantity`, the
Kubernetes quantity library of CRD rules) and by the same grammar in Python
(`kube_syntax.QUANTITY`), and a request must not exceed its limit, as the API server requires
of a pod.
Only cpu, memory and ephemeral-storage: the dataflow uses no extended resources (GPUs) or
hugepages; the API server's field validation refuses other names.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import Field, PlainValidator, WithJsonSchema

from services.operator.kube_syntax import (
    QUANTITY_DOC,
    cel_non_negative_quantity,
    cel_quantity_at_most,
    is_non_negative_quantity,
    quantity_value,
)
from services.operator.schema import Rule, SpecModel

PATH = "dataflow.resources"
NAMES = ("cpu", "memory", "ephemeral-storage")


def _int_or_string(value: Any) -> str | int:
    """A string or an integer as given (no coercion: the API server takes no float here)."""
    if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise ValueError("a quantity is a string or an integer (quote a decimal: '0.5' or '500m')")


Quantity = Annotated[
    str | int, PlainValidator(_int_or_string), WithJsonSchema({"x-kubernetes-int-or-string": True})
]


def quantity_rule(field: str) -> Rule:
    """Rule of the quantity at `dataflow.resources.<field>`."""
    return Rule(
        cel_non_negative_quantity("self"),
        f"{PATH}.{field} must be {QUANTITY_DOC}",
        is_non_negative_quantity,
    )


class Requests(SpecModel):
    cpu: Annotated[Quantity, quantity_rule("requests.cpu")] | None = Field(
        None, description="CPU the scheduler reserves for a process (e.g. 250m, 1)."
    )
    memory: Annotated[Quantity, quantity_rule("requests.memory")] | None = Field(
        None, description="Memory the scheduler reserves for a process (e.g. 256Mi)."
    )
    ephemeral_storage: Annotated[Quantity, quantity_rule("requests.ephemeral-storage")] | None = (
        Field(
            None,
            alias="ephemeral-storage",
            description="Node-local disk the scheduler "
            "reserves for a process (logs, the writable layer; /tmp is a 64Mi emptyDir).",
        )
    )


class Limits(SpecModel):
    cpu: Annotated[Quantity, quantity_rule("limits.cpu")] | None = Field(
        None, description="CPU a process may use at most (throttled above)."
    )
    memory: Annotated[Quantity, quantity_rule("limits.memory")] | None = Field(
        None, description="Memory a process may use at most (OOM-killed above)."
    )
    ephemeral_storage: Annotated[Quantity, quantity_rule("limits.ephemeral-storage")] | None = (
        Field(
            None,
            alias="ephemeral-storage",
            description="Node-local disk a process may use at most (evicted above).",
        )
    )


def _cel_name(name: str) -> str:
    """A property name in CEL: `-` is escaped as `__dash__`."""
    return name.replace("-", "__dash__")


def _at_most_limit(name: str) -> Rule:
    """Rule: the request of `name` does not exceed its limit (when both are given)."""
    attr = name.replace("-", "_")
    req, lim = f"self.requests.{_cel_name(name)}", f"self.limits.{_cel_name(name)}"

    def holds(r: Resources) -> bool:
        low = getattr(r.requests, attr) if r.requests else None
        high = getattr(r.limits, attr) if r.limits else None
        return low is None or high is None or quantity_value(low) <= quantity_value(high)

    return Rule(
        f"!has(self.requests) || !has(self.limits) || !has({req}) || !has({lim}) "
        f"|| {cel_quantity_at_most(req, lim)}",
        f"{PATH}.requests.{name} must not exceed {PATH}.limits.{name}",
        holds,
    )


class Resources(SpecModel):
    rules: ClassVar[tuple[Rule, ...]] = tuple(_at_most_limit(n) for n in NAMES)

    requests: Requests | None = Field(
        None, description="What the scheduler reserves for each process."
    )
    limits: Limits | None = Field(None, description="The most each process may use.")

    def container(self) -> dict[str, Any]:
        """The container's `resources`: the quantities given, as given."""
        return self.model_dump(by_alias=True, exclude_none=True)


def default_resources() -> Resources:
    """requests 250m CPU and 256Mi memory, limits 1 CPU and 768Mi memory."""
    return Resources(
        requests=Requests(cpu="250m", memory="256Mi"), limits=Limits(cpu="1", memory="768Mi")
    )
