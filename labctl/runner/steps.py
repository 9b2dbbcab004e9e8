"""A procedure's plan, walked by the engine: resume bookkeeping, progress and checkpoints in one place.

A procedure lists its steps (any objects: a scan, a hold, a temperature step) and walks them with
``for step in ctx.steps(plan): ...``. The engine

- skips the steps a resumed run completed before its interruption — or restarts from the step a step names
  as its ``resume_from`` (a plan index: the first scan of a forward/reverse pair, so a pair is never split
  by an interruption) — and replays the latest *set-up* step
  before the first one to redo (a step whose ``setup`` attribute is true: light on, temperature reached), so
  the protocol continues where it stopped with its conditions restored;
- checks for pause and abort before each step;
- checkpoints after each step: the position in the plan and ``ctx.state``, a dict the procedure keeps what
  it needs across a resume in (a Vmpp found by a scan, say);
- reports progress weighted by each step's expected duration (``duration_s``, when the step has one);
- tells the step whether it is measured after a resume (``ctx.resumed_run``, and the file's resume count in
  ``ctx.segment``), so blocks can say so.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from labctl.runner.context import RunContext

T = TypeVar("T")

#: Checkpoint key of the plan position.
NEXT_STEP = "next_step"
#: Checkpoint key of the procedure's own state.
STATE = "state"


def _duration(step: Any) -> float:
    value = getattr(step, "duration_s", None)
    return float(value) if isinstance(value, int | float) and value > 0 else 1.0


def walk(ctx: RunContext, plan: Sequence[T]) -> Iterator[T]:
    """See the module docstring (``RunContext.steps`` calls this)."""
    resume = ctx.resume_state or {}
    start = int(resume.get(NEXT_STEP, 0))
    if 0 < start < len(plan):
        restart = getattr(plan[start], "resume_from", None)
        if isinstance(restart, int) and 0 <= restart < start:
            start = restart
    ctx.state.update(dict(resume.get(STATE, {})))
    weights = [_duration(step) for step in plan]
    total = sum(weights) or 1.0
    done = sum(weights[:start])
    if 0 < start < len(plan):
        setup = next((step for step in reversed(plan[:start]) if getattr(step, "setup", False)), None)
        if setup is not None:
            ctx.log(f"resumed at step {start + 1} of {len(plan)}; repeating the set-up: {setup}")
            ctx.check()
            yield setup
    for index in range(start, len(plan)):
        step = plan[index]
        ctx.check()
        ctx.progress(done / total, str(step))
        yield step
        done += weights[index]
        ctx.checkpoint({NEXT_STEP: index + 1, STATE: dict(ctx.state)})
    ctx.progress(1.0, f"{len(plan)} steps done")
