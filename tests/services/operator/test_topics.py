"""Topic partition decisions (services/operator/topics.py)."""

from __future__ import annotations

import pytest

from services.operator.topics import TopicAction, decide_topic

CASES = [
    (None, 6, False, TopicAction.CREATE, "creating"),
    (6, 6, False, TopicAction.OK, ""),
    (6, 3, True, TopicAction.REFUSE, "lowering to 3 is refused"),
    (6, 8, False, TopicAction.REFUSE, "allowPartitionIncrease"),
    (6, 8, True, TopicAction.INCREASE, "from 6 to 8"),
]


@pytest.mark.parametrize(("existing", "declared", "allow", "action", "text"), CASES)
def test_decide_topic(
    existing: int | None, declared: int, allow: bool, action: TopicAction, text: str
) -> None:
    decision = decide_topic("ticks", existing, declared, allow)
    assert decision.action == action
    assert text in decision.message
