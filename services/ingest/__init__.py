"""Ingestion service: providers (replay, simulate, Finnhub quote polling and trade streaming)
publishing ticks to Kafka, sharded across the pods of a StatefulSet, gated by market hours."""
