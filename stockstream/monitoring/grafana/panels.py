"""The dashboard's panels as data: a panel is a `PanelSpec` of `Query`s, and the helpers that
write their PromQL. Every query selects `NS` (the StockStream a series belongs to: its
`namespace` and `stockstream` labels, `.*` for All; pods of the plain manifests carry no
`stockstream`, which `.*` matches)."""

from __future__ import annotations

from dataclasses import dataclass

NS = 'namespace=~"$namespace", stockstream=~"$stockstream"'
RATE = "[$__rate_interval]"


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True)
class PanelSpec:
    """A stat or time series panel: `width` of 24 columns, `unit` a Grafana unit id."""

    kind: str  # "stat" | "timeseries"
    title: str
    description: str
    queries: tuple[Query, ...]
    unit: str = "short"
    width: int = 12


def rate(metric: str, by: str = "", extra: str = "", fn: str = "rate") -> str:
    """`sum [by (...)] (rate(metric{namespace, extra}[$__rate_interval]))`."""
    matchers = NS + (f", {extra}" if extra else "")
    grouping = f" by ({by}) " if by else ""
    return f"sum{grouping}({fn}({metric}{{{matchers}}}{RATE}))"


def quantile_by(metric: str, label: str, q: str, extra: str = "") -> str:
    """The `q` quantile of a histogram over all pods, per value of `label` (or none: "")."""
    grouping = f"le, {label}" if label else "le"
    matchers = NS + (f", {extra}" if extra else "")
    return (
        f"histogram_quantile({q}, sum by ({grouping}) (rate({metric}_bucket{{{matchers}}}{RATE})))"
    )
