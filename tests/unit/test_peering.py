"""A standby replica writes nothing: the gate opens only while no live peer outranks this replica."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from modelcatalog.controllers.peering import Gate, outranked_by

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def peering(**peers: tuple[int, timedelta]) -> dict[str, Any]:
    return {"status": {name: {"priority": priority, "lifetime": 30, "lastseen": (NOW - ago).isoformat()}
                       for name, (priority, ago) in peers.items()}}  # fmt: skip


def test_only_live_peers_with_a_higher_priority_outrank() -> None:
    found = peering(me=(100, timedelta(0)), newer=(200, timedelta(seconds=5)), dead=(300, timedelta(minutes=5)),
                    older=(50, timedelta(0)))  # fmt: skip
    assert outranked_by(found, 100, NOW) == ["newer"]
    assert outranked_by(found, 250, NOW) == []
    assert outranked_by(None, 100, NOW) == []


def test_the_gate_closes_for_a_newer_peer_and_reopens_with_a_takeover_when_it_goes() -> None:
    takeovers: list[int] = []
    gate = Gate(100, lambda: takeovers.append(1))
    assert not gate.open.is_set(), "closed until the peers are known"
    now = datetime.now(UTC)
    gate.update({"status": {"me": {"priority": 100, "lifetime": 30, "lastseen": now.isoformat()}}})
    assert gate.open.is_set() and takeovers == [], "starting to work is not a takeover"
    gate.update({"status": {"new": {"priority": 200, "lifetime": 30, "lastseen": now.isoformat()}}})
    assert not gate.open.is_set()
    gate.update({"status": {}})
    assert gate.open.is_set() and takeovers == [1]


def test_a_standalone_operator_never_waits() -> None:
    gate = Gate(None, lambda: None)
    gate.update(peering(newer=(200, timedelta(0))))
    assert gate.open.is_set()
