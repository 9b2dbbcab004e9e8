"""The engine's persistent queue: order, edits, moves, removal, history, failure policy, and all of it kept
when the database is opened again (an engine restart)."""

from __future__ import annotations

from pathlib import Path

import pytest

from labctl.engine.errors import EngineError
from labctl.engine.queue import RunQueue


@pytest.fixture
def queue(tmp_path: Path) -> RunQueue:
    return RunQueue(tmp_path / "queue.sqlite")


def _add(queue: RunQueue, n: int, **kw: object) -> list[str]:
    return [queue.add("jv", {"sample": [f"p{i}"]}, "/data", **kw).uid for i in range(n)]  # type: ignore[arg-type]


def test_items_run_in_the_order_added_and_survive_reopening(queue: RunQueue, tmp_path: Path) -> None:
    uids = _add(queue, 3)
    queue.set_active(True)
    queue.set_on_failure("continue")
    queue.close()
    again = RunQueue(tmp_path / "queue.sqlite")
    assert [item.uid for item in again.items()] == uids
    assert [item.parameters["sample"] for item in again.items()] == [["p0"], ["p1"], ["p2"]]
    assert [item.position for item in again.items()] == [0, 1, 2]
    assert again.active and again.on_failure == "continue"


def test_move_puts_an_item_where_asked_and_keeps_positions_dense(queue: RunQueue) -> None:
    a, b, c = _add(queue, 3)
    queue.move(c, 0)
    assert [item.uid for item in queue.items()] == [c, a, b]
    queue.move(c, 99)  # past the end: last
    assert [item.uid for item in queue.items()] == [a, b, c]
    assert [item.position for item in queue.items()] == [0, 1, 2]


def test_a_running_item_stays_first_and_cannot_be_moved_edited_or_removed(queue: RunQueue) -> None:
    a, b, c = _add(queue, 3)
    queue.mark_running(b, "/data/run.h5", resume=False)
    assert [item.uid for item in queue.items()] == [b, a, c]
    queue.move(c, 0)  # 0 = next to run: after the running item
    assert [item.uid for item in queue.items()] == [b, c, a]
    with pytest.raises(EngineError, match="running"):
        queue.move(b, 2)
    with pytest.raises(EngineError, match="only queued items can be edited"):
        queue.edit(b, parameters={"sample": ["x"]})
    with pytest.raises(EngineError, match="abort it first"):
        queue.remove(b)
    added = queue.add("jv", {}, "/data", position=0)
    assert [item.uid for item in queue.items()][:2] == [b, added.uid]


def test_edit_changes_parameters_and_policy_of_a_queued_item(queue: RunQueue) -> None:
    (a,) = _add(queue, 1)
    edited = queue.edit(a, parameters={"sample": ["q"]}, on_failure="continue", operator="ana")
    assert edited.parameters == {"sample": ["q"]} and edited.on_failure == "continue" and edited.operator == "ana"
    assert queue.policy_for(edited) == "continue"
    cleared = queue.edit(a, clear_on_failure=True)
    assert cleared.on_failure is None and queue.policy_for(cleared) == "stop"


def test_finish_moves_the_item_to_the_history_with_its_end_state(queue: RunQueue) -> None:
    a, b = _add(queue, 2)
    queue.mark_running(a, "/data/a.h5", resume=False)
    entry = queue.finish(a, "failed", "RuntimeError: boom", session="s1")
    assert (entry.uid, entry.status, entry.reason, entry.file, entry.session) == (a, "failed", "RuntimeError: boom",
                                                                                  "/data/a.h5", "s1")
    assert [item.uid for item in queue.items()] == [b] and queue.items()[0].position == 0
    assert [e.uid for e in queue.history()] == [a]


def test_removing_an_interrupted_item_files_it_as_interrupted(queue: RunQueue) -> None:
    (a,) = _add(queue, 1)
    queue.mark_running(a, "/data/a.h5", resume=False)
    queue.set_state(a, "interrupted", resume=True)
    queue.remove(a)
    (entry,) = queue.history()
    assert entry.status == "interrupted" and "without resuming" in entry.reason


def test_uids_may_be_abbreviated_when_unambiguous(queue: RunQueue) -> None:
    (a,) = _add(queue, 1)
    assert queue.get(a[:3]).uid == a
    with pytest.raises(EngineError, match="no queued item"):
        queue.get("zz")


def test_bad_policies_are_refused_with_the_allowed_values(queue: RunQueue) -> None:
    with pytest.raises(EngineError, match="on_failure = 'retry'; allowed: stop, continue"):
        queue.set_on_failure("retry")
    with pytest.raises(EngineError, match="allowed: stop, continue"):
        queue.add("jv", {}, "/data", on_failure="ignore")
