"""Kubernetes' own syntax rules (label keys and values, DNS subdomains, quantities), written
once for both checkers: the CEL of a CRD rule and its Python twin (`schema.Rule`).

The API server refuses a pod whose labels, tolerations or resources break these rules, but
only when the operator applies the StatefulSet it generated: the StockStream would be stored
and the pipeline stuck. Checking the same rules on the StockStream itself refuses the mistake
at `kubectl apply` instead, with a message that names the field.

The regular expressions are RE2 and Python alike (no look-arounds) and are anchored; CEL's
`matches()` searches, Python uses `fullmatch` (its `$` would also match before a trailing
newline). CEL gets them as raw strings (`r'...'`), so backslashes need no escaping.
"""

from __future__ import annotations

import re
from fractions import Fraction

# A label key, annotation key, nodeSelector or toleration key (a "qualified name"): an
# optional DNS-subdomain prefix and '/', then a name of at most 63 characters. The prefix's
# 253-character bound is checked apart (RE2 has no look-ahead to bound a repeated group).
QUALIFIED_NAME = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
PREFIX_MAX = 253
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS_SUBDOMAIN_MAX = 253
# resource.Quantity as its parser reads it (k8s.io/apimachinery/pkg/api/resource): a signed
# decimal number, then a binary (Ki..Ei) or decimal (n, u, m, k, M..E) suffix or an integer
# exponent (e3, E-2). `K` alone, `ki` and fractional exponents are refused there too.
QUANTITY = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?$"

QUALIFIED_NAME_DOC = (
    "an optional prefix (a DNS subdomain of at most 253 characters) and "
    "'/', then a name of at most 63 characters: alphanumerics, '-', '_' or "
    "'.', starting and ending with an alphanumeric (e.g. team, "
    "example.com/tier)"
)
LABEL_VALUE_DOC = (
    "at most 63 characters: empty, or alphanumerics, '-', '_' or '.' starting "
    "and ending with an alphanumeric"
)
DNS_SUBDOMAIN_DOC = (
    "a DNS subdomain: at most 253 lowercase alphanumerics, '-' or '.', "
    "starting and ending with an alphanumeric"
)
QUANTITY_DOC = "a non-negative Kubernetes quantity (e.g. 500m, 2, 1.5, 256Mi, 1Gi)"

_BINARY = {s: 2 ** (10 * i) for i, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"), 1)}
_DECIMAL = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 1000),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}
_MAX_EXPONENT = 1000


def is_qualified_name(key: str) -> bool:
    prefix, slash, _ = key.rpartition("/")
    return bool(re.fullmatch(QUALIFIED_NAME, key)) and (not slash or len(prefix) <= PREFIX_MAX)


def is_label_value(value: str) -> bool:
    return bool(re.fullmatch(LABEL_VALUE, value))


def is_dns_subdomain(name: str) -> bool:
    return len(name) <= DNS_SUBDOMAIN_MAX and bool(re.fullmatch(DNS_SUBDOMAIN, name))


def quantity_value(quantity: str | int) -> Fraction:
    """The exact value of a quantity (`1.5Gi` -> 1610612736); ValueError if it is none."""
    if isinstance(quantity, int):
        return Fraction(quantity)
    match = re.fullmatch(QUANTITY, quantity)
    if match is None:
        raise ValueError(f"not a Kubernetes quantity: {quantity!r}")
    value = Fraction(quantity[: match.end(1)])  # the signed number
    suffix = quantity[match.end(1) :]
    if suffix in _BINARY:
        return value * _BINARY[suffix]
    if suffix in _DECIMAL:
        return value * _DECIMAL[suffix]
    # Kubernetes takes any 32-bit exponent; beyond +-1000 (no resource is near) it is
    # clamped, so that 1e999999999 cannot make the operator compute a billion digits.
    return value * Fraction(10) ** max(-_MAX_EXPONENT, min(_MAX_EXPONENT, int(suffix[1:])))


def is_non_negative_quantity(quantity: str | int) -> bool:
    try:
        return quantity_value(quantity) >= 0
    except ValueError:
        return False


# CEL of the same checks, on `x` (an expression); `x` of a quantity may be an int or a string
# (x-kubernetes-int-or-string), hence `type(x) == int` and `string(x)`.
def cel_qualified_name(x: str) -> str:
    return f"{x}.matches(r'{QUALIFIED_NAME}') && {x}.indexOf('/') <= {PREFIX_MAX}"


def cel_label_value(x: str) -> str:
    return f"{x}.matches(r'{LABEL_VALUE}')"


def cel_dns_subdomain(x: str) -> str:
    return f"size({x}) <= {DNS_SUBDOMAIN_MAX} && {x}.matches(r'{DNS_SUBDOMAIN}')"


def cel_non_negative_quantity(x: str) -> str:
    return (
        f"type({x}) == int ? {x} >= 0 : isQuantity({x}) && !quantity({x}).isLessThan(quantity('0'))"
    )


def cel_quantity_at_most(low: str, high: str) -> str:
    """`low` <= `high` when both are quantities (a bad one fails its own rule instead)."""
    a, b = f"string({low})", f"string({high})"
    return f"!isQuantity({a}) || !isQuantity({b}) || quantity({a}).compareTo(quantity({b})) <= 0"
