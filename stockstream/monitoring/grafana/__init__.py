"""Grafana as code: the pipeline dashboard (`dashboard`) and the Grafana-managed alert rules
(`alert_rules`), built with Grafana's typed builder `grafana-foundation-sdk`. Regenerate the
committed files with `python -m stockstream.monitoring.grafana` (a test checks they match)."""
