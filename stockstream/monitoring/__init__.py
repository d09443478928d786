"""Prometheus, Alertmanager and the alert rules on one machine: the time-scaled rule variant
(`timescale`), the servers (`servers`) and a webhook receiver for notifications (`webhook`)."""
