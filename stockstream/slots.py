"""Building frozen slotted dataclasses where millions are built: ticks, window figures.

A frozen dataclass's `__init__` sets each field through `object.__setattr__` (frozen classes
refuse plain assignment), which costs more than the rest of building one. `slot_builder(cls)`
returns a function of the same positional arguments that sets the slots directly through
their descriptors: the same object, at less than half the cost. The class stays a dataclass,
so equality, hashing, `dataclasses.replace` and pickles (the dataflow's recovery snapshots)
are unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, is_dataclass
from typing import Any, TypeVar

T = TypeVar("T")


def slot_builder(cls: type[T]) -> Callable[..., T]:
    """`cls(*values)` without `__init__`: every field positional, in declaration order, no
    defaults and no `__post_init__` (the caller passes checked values)."""
    if not is_dataclass(cls) or "__slots__" not in vars(cls):
        raise TypeError(f"{cls.__name__} is not a slotted dataclass")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} has a __post_init__ that the builder would skip")
    names = [field.name for field in fields(cls)]
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    namespace.update({f"_set_{name}": getattr(cls, name).__set__ for name in names})
    # Unrolled (as dataclasses generate __init__): a loop over the setters costs as much as
    # the __init__ it replaces.
    source = "\n".join([
        f"def build({', '.join(names)}):",
        "    obj = _new(_cls)",
        *(f"    _set_{name}(obj, {name})" for name in names),
        "    return obj",
    ])
    exec(source, namespace)  # noqa: S102 - generated from the class's own field names
    build: Callable[..., T] = namespace["build"]
    build.__qualname__ = f"slot_builder({cls.__qualname__})"
    return build
