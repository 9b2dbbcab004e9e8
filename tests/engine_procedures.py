"""Procedures used only by the engine tests (importable as ``engine_procedures:<Class>``)."""

from __future__ import annotations

from typing import Any

from labctl.runner import FloatParameter, IntParameter, Procedure, RunContext


class Fading(Procedure):
    """A cell whose power falls at ``drop_per_h`` mW/cm² per hour, read every ``interval_s``; its channel is
    reported suspended at reading ``suspend_at`` (as the runner does when an instrument drops out)."""

    name = "fading"
    title = "test: a fading cell"

    n_points = IntParameter("readings", default=120, minimum=1, maximum=100_000)
    interval_s = FloatParameter("interval", unit="s", default=60.0, minimum=0.0, maximum=3600.0)
    drop_per_h = FloatParameter("power drop", unit="mW/cm2/h", default=3.0, minimum=0.0, maximum=100.0)
    suspend_at = IntParameter("reading at which the channel is suspended", default=-1, minimum=-1,
                              maximum=100_000)

    def execute(self, ctx: RunContext) -> None:
        state: dict[str, Any] = ctx.resume_state or {}
        block = ctx.block("spo_a") if "spo_a" in ctx.block_names() else ctx.create_block(
            "spo_a", {"time_s": "s", "power_mW_cm2": "mW/cm2"})
        for i in range(int(state.get("next", 0)), self.n_points):
            ctx.sleep(self.interval_s)
            t = i * self.interval_s
            block.append_row(time_s=t, power_mW_cm2=15.0 - self.drop_per_h * t / 3600.0)
            if i == self.suspend_at:
                ctx.event("channel_suspended", "smu: link lost", channel="a", instrument="smu")
            ctx.checkpoint({"next": i + 1})
            ctx.progress((i + 1) / self.n_points, f"reading {i + 1}/{self.n_points}")
