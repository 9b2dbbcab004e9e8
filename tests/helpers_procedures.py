"""Procedures used only by the runner tests (importable as ``helpers_procedures:<Class>``)."""

from __future__ import annotations

from typing import Any

from labctl.errors import InstrumentError
from labctl.runner import FloatParameter, IntParameter, Procedure, RunContext, TextListParameter, TextParameter


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


class ChannelMonitor(Procedure):
    """Holds every channel at 80 % of its open-circuit voltage under the lamp and reads it every
    ``interval_s``, one block per channel; suspends on the reference cell's irradiance. Enough of an aging
    run to exercise channels, shared switches, lost instruments and suspenders."""

    name = "channel_monitor"
    title = "test: hold and read many channels"

    sample = TextListParameter("samples")
    duration_s = FloatParameter("duration", unit="s", default=3600.0, minimum=1.0, maximum=1e8)
    interval_s = FloatParameter("reading interval", unit="s", default=60.0, minimum=0.01, maximum=3600.0)
    band_mW_cm2 = FloatParameter("irradiance band half-width", unit="mW/cm2", default=10.0, minimum=0.1,
                                 maximum=100.0)
    clear_for_s = FloatParameter("clear for", unit="s", default=120.0, minimum=0.0, maximum=3600.0)

    def instruments_needed(self, station: Any) -> list[str]:
        names: list[str] = []
        for sample in self.sample:
            spec = station.sample(sample)
            names += [n for n in (spec.smu, spec.switch, spec.light) if n]
            ref = station.reference_cell_for(spec.light)
            if ref is not None:
                names.append(ref.smu)
        return list(dict.fromkeys(names))

    def execute(self, ctx: RunContext) -> None:
        from labctl.runner.suspenders import IrradianceInBand

        assert ctx.bench is not None
        light_name = ctx.bench.station.sample(self.sample[0]).light
        light = ctx.bench.light(self.sample[0])
        light.set_intensity_suns(1.0)
        light.open_shutter()
        reference = ctx.bench.reference_cell(light_name)
        assert reference is not None
        self.end_s = (ctx.resume_state or {}).get("end_s", ctx.clock.now() + self.duration_s)
        ctx.checkpoint({"end_s": self.end_s})
        band = IrradianceInBand(reference.read_irradiance_mW_cm2, 100.0 - self.band_mW_cm2,
                                100.0 + self.band_mW_cm2, clear_for_s=self.clear_for_s)
        ctx.run_channels(self.run_channel, suspenders=[band])

    def run_channel(self, ch: Any) -> None:
        ch.ends_at_s = self.end_s
        state = ch.resume_state or {}
        block_name = f"ch_{ch.name}"
        if block_name in ch.block_names():
            block = ch.block(block_name)
        else:
            block = ch.create_block(block_name, {"time_s": "s", "voltage_V": "V", "current_A": "A"})
        smu = ch.smu
        hold_V = state.get("hold_V")
        if hold_V is None:
            with ch.measuring():
                smu.set_compliance_current(0.01)
                smu.source_current(0.0)
                smu.output_on()
                hold_V = 0.8 * smu.measure()[0]
            ch.checkpoint({"hold_V": hold_V})
        while ch.clock.now() < self.end_s:
            with ch.measuring():
                smu.source_voltage(hold_V)
                smu.output_on()
                voltage, current = smu.measure()
            block.append_row(time_s=ch.clock.now(), voltage_V=voltage, current_A=current)
            ch.checkpoint({"hold_V": hold_V})
            ch.sleep(self.interval_s)

    def hold(self, ctx: Any, why: str) -> None:
        if hasattr(ctx, "smu"):
            ctx.smu.output_off()
