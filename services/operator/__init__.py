"""The stockstream operator: one `StockStream` custom resource runs the whole pipeline.

Pure decisions (`model`, `checks`, `objects`, `feed`, `lifecycle`, `freshness`, `topics`)
are separate from the Kubernetes and broker I/O (`kube`, `reconcile`, `handlers`).
"""
