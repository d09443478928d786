"""Tick providers behind one interface (`Provider`), chosen by `PROVIDER`."""

from __future__ import annotations

from services.ingest.providers.base import ErrorCounts, Provider
from services.ingest.settings import IngestSettings, ProviderName

__all__ = ["ErrorCounts", "Provider", "make_provider"]


def make_provider(settings: IngestSettings) -> Provider:
    """The provider `settings.provider` names, configured from `settings`."""
    if settings.provider is ProviderName.REPLAY:
        from services.ingest.providers.replay import ReplayProvider

        return ReplayProvider(
            settings.replay_file,
            settings.replay_format,
            speed=settings.replay_speed,
            loop=settings.replay_loop,
            from_time=settings.replay_from,
        )
    if settings.provider is ProviderName.SIMULATE:
        from services.ingest.providers.simulate import SimulateProvider

        return SimulateProvider(
            rate=settings.simulate_rate,
            seed=settings.simulate_seed,
            volatility=settings.simulate_volatility,
            drift=settings.simulate_drift,
            slice_s=settings.simulate_slice_s,
        )
    if settings.provider is ProviderName.FINNHUB_QUOTE:
        from services.ingest.providers.finnhub_quote import FinnhubQuoteProvider

        return FinnhubQuoteProvider(
            base_url=settings.finnhub_base_url,
            api_key=settings.api_key,
            interval_s=settings.poll_interval_s,
            concurrency=settings.poll_concurrency,
            timeout_s=settings.http_timeout_s,
        )
    from services.ingest.providers.finnhub_trades import FinnhubTradesProvider

    return FinnhubTradesProvider(
        url=settings.finnhub_ws_url,
        api_key=settings.api_key,
        heartbeat_timeout_s=settings.ws_heartbeat_timeout_s,
        backoff_initial_s=settings.ws_backoff_initial_s,
        backoff_max_s=settings.ws_backoff_max_s,
    )
