"""IngestSettings from the environment: defaults, the deploy manifest's variable names,
validation, and the universe sources."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from services.ingest.__main__ import resolve_universe, use_kubernetes
from services.ingest.providers import make_provider
from services.ingest.settings import IngestSettings, Membership, ProviderName
from services.ingest.universe import parse_universe, simulated_universe


def test_defaults_need_no_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = IngestSettings()
    assert settings.provider is ProviderName.REPLAY
    assert settings.exchange == "24/7"
    assert make_provider(settings).name == "replay"
    assert len(resolve_universe(settings)) == 30  # the bundled SSE file's symbols


@pytest.mark.parametrize(
    ("env", "field", "value"),
    [
        ({"INGEST_STATEFULSET": "ingest"}, "statefulset_name", "ingest"),
        ({"STATEFULSET_NAME": "ingest"}, "statefulset_name", "ingest"),
        ({"POD_NAMESPACE": "prod"}, "namespace", "prod"),
        ({"NAMESPACE": "prod"}, "namespace", "prod"),
        ({"POD_NAME": "ingest-2"}, "pod_name", "ingest-2"),
        ({"HOSTNAME": "ingest-4"}, "pod_name", "ingest-4"),
        ({"INGEST_SYMBOLS_FILE": "/etc/s.txt"}, "symbols_file", Path("/etc/s.txt")),
        ({"SYMBOLS_FILE": "/etc/s.txt"}, "symbols_file", Path("/etc/s.txt")),
        (
            {"PROVIDER": "finnhub_trades", "FINNHUB_API_KEY": "k", "SYMBOLS": "AAPL"},
            "provider",
            ProviderName.FINNHUB_TRADES,
        ),
        ({"POLL_INTERVAL_S": "2.5"}, "poll_interval_s", 2.5),
        ({"SIMULATE_RATE": "50000"}, "simulate_rate", 50000.0),
        ({"MEMBERSHIP": "static"}, "membership", Membership.STATIC),
    ],
)
def test_environment(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], field: str, value: object
) -> None:
    for name, text in env.items():
        monkeypatch.setenv(name, text)
    assert getattr(IngestSettings(), field) == value


@pytest.mark.parametrize(
    "env",
    [
        {"PROVIDER": "iex"},
        {"SHARD_COUNT": "0"},
        {"MEMBERSHIP": "static", "SHARD_COUNT": "2", "SHARD_INDEX": "2"},
        {"POLL_INTERVAL_S": "0"},
        {"WS_BACKOFF_INITIAL_S": "10", "WS_BACKOFF_MAX_S": "1"},
    ],
)
def test_invalid(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name, text in env.items():
        monkeypatch.setenv(name, text)
    with pytest.raises(ValidationError):
        IngestSettings()


@pytest.mark.parametrize("provider", ["finnhub_quote", "finnhub_trades"])
def test_live_providers_need_a_key_and_a_universe(provider: str) -> None:
    """Refused when the settings are read (one line at start-up, stockstream/cli.py)."""
    with pytest.raises(ValidationError, match="needs FINNHUB_API_KEY"):
        IngestSettings(provider=provider, symbols="AAPL")
    with pytest.raises(ValidationError, match="needs SYMBOLS or SYMBOLS_FILE"):
        IngestSettings(provider=provider, finnhub_api_key="k", symbols=" ")
    settings = IngestSettings(provider=provider, finnhub_api_key="k", symbols="AAPL, MSFT,AAPL")
    assert make_provider(settings).name == provider
    assert resolve_universe(settings) == ["AAPL", "MSFT"]


def test_universe_sources(tmp_path: Path) -> None:
    file = tmp_path / "symbols.txt"
    file.write_text("# universe\n600103\n\n600107  # comment\n600103\n", encoding="utf-8")
    assert resolve_universe(IngestSettings(symbols_file=file)) == ["600103", "600107"]
    assert resolve_universe(IngestSettings(symbols="IBM", symbols_file=file)) == ["IBM"]
    assert resolve_universe(IngestSettings(provider="simulate", simulate_symbols=3)) == [
        "SIM0000",
        "SIM0001",
        "SIM0002",
    ]
    assert len(set(simulated_universe(10_000))) == 10_000
    with pytest.raises(ValueError, match="bad symbol"):
        parse_universe("AAPL,bad symbol", separator=",")


def test_kubernetes_membership_needs_the_pod_and_statefulset_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("HOSTNAME", raising=False)
    with pytest.raises(ValidationError, match="needs POD_NAME and STATEFULSET_NAME"):
        IngestSettings(membership="kubernetes", pod_name="ingest-0")
    with pytest.raises(ValidationError, match="needs POD_NAME and STATEFULSET_NAME"):
        IngestSettings(membership="kubernetes", statefulset_name="ingest")
    assert (
        IngestSettings(
            membership="kubernetes", pod_name="ingest-0", statefulset_name="ingest"
        ).pod_name
        == "ingest-0"
    )


def test_membership_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert not use_kubernetes(IngestSettings(statefulset_name="ingest"))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    assert use_kubernetes(IngestSettings(statefulset_name="ingest"))
    assert not use_kubernetes(IngestSettings())
    assert not use_kubernetes(IngestSettings(statefulset_name="ingest", membership="static"))
