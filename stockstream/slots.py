"""Building and pickling frozen slotted dataclasses where millions are built: ticks, window
figures.

A frozen dataclass's `__init__` sets each field through `object.__setattr__` (frozen classes
refuse plain assignment), which costs more than the rest of building one. `slot_builder(cls)`
returns a function of the same positional arguments that sets the slots directly through
their descriptors: the same object, at less than half the cost. The class stays a dataclass,
so equality, hashing, `dataclasses.replace` and pickles (the dataflow's recovery snapshots)
are unchanged.

Pickling them is the other cost: a slotted dataclass's `__getstate__` calls `fields()` for
every object, and the ranking's snapshot (every epoch) holds every emitted window's rows for
a window length (tens of thousands of `Figures` at 500 symbols). `fast_getstate(cls)` gives
the class a `__getstate__` that is one `operator.attrgetter` call: the same state (the field
values in declaration order, which the dataclass's own `__setstate__` loads), so snapshots
written before and after load in both versions.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import fields, is_dataclass
from typing import Any, TypeVar

T = TypeVar("T")


def _require_slotted_dataclass(cls: type) -> list[str]:
    if not is_dataclass(cls) or "__slots__" not in vars(cls):
        raise TypeError(f"{cls.__name__} is not a slotted dataclass")
    return [field.name for field in fields(cls)]


def fast_getstate(cls: type[T]) -> type[T]:
    """Class decorator, outside `@dataclass(frozen=True, slots=True)`: a `__getstate__`
    returning the field values as a tuple in one C call (see the module docstring)."""
    names = _require_slotted_dataclass(cls)
    if len(names) < 2:  # attrgetter of one name returns the value, not a 1-tuple
        raise TypeError(f"{cls.__name__} has fewer than two fields")
    get_values = operator.attrgetter(*names)

    def __getstate__(self: T) -> tuple[Any, ...]:  # noqa: N807 - pickle's protocol name
        values: tuple[Any, ...] = get_values(self)
        return values

    __getstate__.__qualname__ = f"{cls.__qualname__}.__getstate__"
    cls.__getstate__ = __getstate__  # type: ignore[assignment]
    return cls


def slot_builder(cls: type[T]) -> Callable[..., T]:
    """`cls(*values)` without `__init__`: every field positional, in declaration order, no
    defaults and no `__post_init__` (the caller passes checked values)."""
    names = _require_slotted_dataclass(cls)
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} has a __post_init__ that the builder would skip")
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    namespace.update({f"_set_{name}": getattr(cls, name).__set__ for name in names})
    # Unrolled (as dataclasses generate __init__): a loop over the setters costs as much as
    # the __init__ it replaces.
    source = "\n".join(
        [
            f"def build({', '.join(names)}):",
            "    obj = _new(_cls)",
            *(f"    _set_{name}(obj, {name})" for name in names),
            "    return obj",
        ]
    )
    exec(source, namespace)  # noqa: S102 - generated from the class's own field names
    build: Callable[..., T] = namespace["build"]
    build.__qualname__ = f"slot_builder({cls.__qualname__})"
    return build
