"""Input topics are created to be kept for replay; the others keep the broker's defaults."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from afflux.shared.secret_policy import settings_error
from afflux.shared.settings import CommonSettings
from afflux.shared.topics import ALL_TOPICS, INFINITE_RETENTION_MS, Topic, by_name, topic_configs

pytestmark = pytest.mark.unit

# What the outside world said, people's review decisions included.
INPUTS = ("clicks", "orders", "refunds", "campaigns", "content", "reviews")
# The attribution's answers, replayed by the ledger rebuild and the order-outcome index,
# and the payouts, from which the ledger writes back records Redis lost.
REPLAYED = ("conversions", "reversals", "attribution.unmatched", "payouts")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("AFFLUX_"):
            monkeypatch.delenv(name)


def test_the_input_topics_are_the_outside_worlds_events() -> None:
    assert sorted(t.name for t in ALL_TOPICS if t.input) == sorted(INPUTS)


def test_the_replayed_topics_are_the_attributions_answers_and_the_payouts() -> None:
    assert sorted(t.name for t in ALL_TOPICS if t.replayed) == sorted(REPLAYED)


@pytest.mark.parametrize("name", INPUTS + REPLAYED)
def test_an_input_or_replayed_topic_is_kept_forever_by_default(name: str) -> None:
    assert topic_configs(by_name(name))["retention.ms"] == "-1"


@pytest.mark.parametrize("name", INPUTS + REPLAYED)
def test_an_input_topics_retention_is_the_configured_one(name: str) -> None:
    assert topic_configs(by_name(name), 90 * 86_400_000)["retention.ms"] == "7776000000"


@pytest.mark.parametrize(
    "topic", [t for t in ALL_TOPICS if not t.kept_for_replay], ids=lambda t: t.name
)
def test_other_topics_keep_the_brokers_retention(topic: Topic) -> None:
    assert "retention.ms" not in topic_configs(topic)


def test_compacted_topics_stay_compacted() -> None:
    assert topic_configs(by_name("campaigns"))["cleanup.policy"] == "compact"
    assert topic_configs(by_name("links")) == {"cleanup.policy": "compact"}


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        (None, INFINITE_RETENTION_MS),  # unset: forever
        ("-1", -1),  # forever, said explicitly
        ("1", 1),  # the smallest positive retention
        ("31536000000", 31_536_000_000),  # a year
    ],
)
def test_the_retention_setting(
    given: str | None, kept: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    if given is not None:
        monkeypatch.setenv("AFFLUX_INPUT_RETENTION_MS", given)
    assert CommonSettings().input_retention_ms == kept


@pytest.mark.parametrize("given", ["0", "-2"])  # 0 deletes at once; below -1 means nothing
def test_a_retention_that_would_lose_the_inputs_is_refused(
    given: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AFFLUX_INPUT_RETENTION_MS", given)
    with pytest.raises(ValidationError) as raised:
        CommonSettings()
    assert settings_error(raised.value).startswith("AFFLUX_INPUT_RETENTION_MS: must be -1")
