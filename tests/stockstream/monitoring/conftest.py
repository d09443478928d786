"""promtool for the monitoring unit tests."""

from tests.observability.conftest import promtool

__all__ = ["promtool"]
