"""Procedures used only by the runner tests (importable as ``helpers_procedures:<Class>``)."""

from __future__ import annotations

from typing import Any

from labctl.errors import InstrumentError
from labctl.runner import FloatParameter, IntParameter, Procedure, RunContext, TextParameter


class CountingProcedure(Procedure):
    """Appends index and index² every ``interval_s``; checkpoints so it can be resumed."""

    name = "counting"
    title = "test: count with checkpoints"

    n_points = IntParameter("points", default=10, minimum=1, maximum=1_000_000)
    interval_s = FloatParameter("interval", unit="s", default=1.0, minimum=0.0, maximum=3.6e6)
    checkpoint_every = IntParameter("checkpoint every", default=1, minimum=1, maximum=1000)
    fail_at = IntParameter("raise at index", default=-1, minimum=-1, maximum=1_000_000)
    fail_kind = TextParameter("failure", default="error", choices=["error", "instrument"])

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        self.calls: list[str] = []

    def startup(self, ctx: RunContext) -> None:
        self.calls.append("startup")

    def execute(self, ctx: RunContext) -> None:
        self.calls.append("execute")
        state = ctx.resume_state or {}
        start = int(state.get("next_index", 0))
        if "counts" in ctx.block_names():
            block = ctx.block("counts")
        else:
            block = ctx.create_block("counts", {"index": "", "square": "", "time_s": "s"},
                                     {"interval_s": self.interval_s})
        t0 = ctx.clock.now()
        for i in range(start, self.n_points):
            if i == self.fail_at and ctx.resume_state is None:  # a fault that a resume has got past
                if self.fail_kind == "instrument":
                    raise InstrumentError("no reply", instrument="smu", address="sim://test")
                raise RuntimeError(f"injected failure at {i}")
            ctx.sleep(self.interval_s)
            block.append_row(index=i, square=i * i, time_s=ctx.clock.now() - t0)
            if (i + 1) % self.checkpoint_every == 0:
                ctx.checkpoint({"next_index": i + 1})
            ctx.progress((i + 1) / self.n_points, f"point {i + 1}/{self.n_points}")

    def shutdown(self, ctx: RunContext) -> None:
        self.calls.append("shutdown")
        ctx.event("test_shutdown", "counting procedure shut down")
