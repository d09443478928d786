"""`python -m stockstream.log_index install|prune`: the log index's template and its lifecycle.

The log shipper (Filebeat, `observability/logging/filebeat.yml`) writes one index per UTC day,
`<prefix>-YYYY.MM.DD`. This command keeps those indices usable and bounded, against
Elasticsearch or OpenSearch alike (it uses only APIs both have):

- `install` PUTs `observability/logging/index-template.json` as the composable index template
  `<prefix>` (idempotent), retrying until the search cluster answers. The logging component's
  Job runs it at every deploy.
- `prune` is the lifecycle policy: it deletes the daily indices older than
  `LOG_RETENTION_DAYS` days (today, UTC, counts as the first day) and leaves every other index
  alone. The logging component's CronJob runs it daily. Elasticsearch's ILM and OpenSearch's
  ISM plugin would do the same, but neither is in every distribution (OpenSearch's minimal
  one, which the project's cluster runs, has no ISM), so the policy is this one command.

Errors are one line each and a non-zero exit status; nothing is deleted when the listing fails.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
from pydantic import Field, HttpUrl
from pydantic_settings import BaseSettings, SettingsConfigDict

from stockstream.cli import check_arguments, fail, read_settings, redact
from stockstream.logs import configure_logging

log = logging.getLogger("stockstream.log_index")

PROG = "stockstream log-index"
ACTIONS = {
    "install": "PUT the index template (retrying until the search cluster answers), then exit",
    "prune": "delete the daily log indices older than LOG_RETENTION_DAYS, then exit",
}
_DAY_FORMAT = "%Y.%m.%d"


class LogIndexSettings(BaseSettings):
    """Where the logs are and how long they are kept; variables are the upper-cased names."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    es_url: HttpUrl = Field(
        HttpUrl("http://opensearch:9200"),
        description="Elasticsearch/OpenSearch URL the shipper writes to.",
    )
    log_index_prefix: str = Field(
        "stockstream-logs",
        pattern=r"^[a-z0-9][a-z0-9_.-]*$",
        description="Daily indices are <prefix>-YYYY.MM.DD; the template is named <prefix>.",
    )
    log_index_template_file: Path = Field(
        Path("observability/logging/index-template.json"),
        description="The composable index template (JSON) `install` puts.",
    )
    log_retention_days: int = Field(
        7, ge=1, le=3650, description="`prune` keeps this many daily indices, today included."
    )
    log_index_wait_s: float = Field(
        600.0, gt=0, description="How long `install` retries while the search cluster is down."
    )
    log_level: str = Field("INFO", description="Python log level name.")


def index_day(name: str, prefix: str) -> date | None:
    """The UTC day of daily index `name` (`<prefix>-YYYY.MM.DD`), or None for any other index."""
    match = re.fullmatch(re.escape(prefix) + r"-(\d{4}\.\d{2}\.\d{2})", name)
    if match is None:
        return None
    try:
        return datetime.strptime(match.group(1), _DAY_FORMAT).replace(tzinfo=UTC).date()
    except ValueError:
        return None


def expired_indices(
    names: Iterable[str], prefix: str, retention_days: int, today: date
) -> list[str]:
    """The daily indices among `names` older than `retention_days` days (today is day one)."""
    oldest_kept = today - timedelta(days=retention_days - 1)
    return sorted(
        name for name in names if (day := index_day(name, prefix)) is not None and day < oldest_kept
    )


def install_template(client: httpx.Client, settings: LogIndexSettings) -> None:
    """PUT the template, retrying connection errors and 5xx until `log_index_wait_s` passes."""
    body = json.loads(settings.log_index_template_file.read_text())
    path = f"/_index_template/{settings.log_index_prefix}"
    deadline = time.monotonic() + settings.log_index_wait_s
    while True:
        try:
            response = client.put(path, json=body)
            if response.status_code < 500:
                break
            problem = f"HTTP {response.status_code}"
        except httpx.TransportError as error:
            problem = type(error).__name__
        if time.monotonic() >= deadline:
            fail(
                PROG,
                f"{redact(str(settings.es_url))} did not accept the template within "
                f"{settings.log_index_wait_s:.0f}s (last: {problem})",
            )
        log.info("search cluster not ready, retrying", extra={"problem": problem})
        time.sleep(5.0)
    if response.is_error:
        fail(PROG, f"PUT {path} refused: HTTP {response.status_code} {response.text[:300]}")
    log.info("index template installed", extra={"template": settings.log_index_prefix})


def prune(client: httpx.Client, settings: LogIndexSettings, today: date) -> list[str]:
    """Delete the expired daily indices; returns their names."""
    response = client.get(
        f"/_cat/indices/{settings.log_index_prefix}-*", params={"format": "json", "h": "index"}
    )
    if response.is_error:
        fail(PROG, f"listing the log indices failed: HTTP {response.status_code}")
    names = [row["index"] for row in response.json()]
    expired = expired_indices(names, settings.log_index_prefix, settings.log_retention_days, today)
    for name in expired:
        deleted = client.delete(f"/{name}")
        if deleted.is_error and deleted.status_code != 404:
            fail(PROG, f"deleting {name} failed: HTTP {deleted.status_code}")
    log.info(
        "log indices pruned",
        extra={
            "deleted": expired,
            "kept": len(names) - len(expired),
            "retention_days": settings.log_retention_days,
        },
    )
    return expired


def main() -> None:
    check_arguments(PROG, __doc__, None, LogIndexSettings, ACTIONS)
    actions = sys.argv[1:]
    if len(actions) != 1:
        fail(PROG, "give one action: install or prune (see --help)")
    settings = read_settings(LogIndexSettings, PROG)
    configure_logging("log-index", settings.log_level)
    with httpx.Client(base_url=str(settings.es_url).rstrip("/"), timeout=30.0) as client:
        try:
            if actions[0] == "install":
                install_template(client, settings)
            else:
                prune(client, settings, datetime.now(UTC).date())
        except httpx.HTTPError as error:
            fail(PROG, f"{redact(str(settings.es_url))}: {type(error).__name__}")


if __name__ == "__main__":
    main()
