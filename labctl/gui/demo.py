"""``labctl gui --demo``: the window drives itself through a short session on the simulated station — two
J–V runs queued from the form, the queue started, the first run finished and shown in the browser with its
analysis while the second is measured — then attaches to a second engine, of the simulated aging station
(19 cells, virtual time), and starts an MPPT aging run of every cell. With ``--screenshot FILE.png`` it saves
the whole window at each stage: ``FILE.png`` (browser), ``FILE-jv.png`` (the live J–V of the second run),
``FILE-mppt.png`` and ``FILE-dashboard.png`` (the aging run's live plot and its tiles, laid out as the
station's holder) and ``FILE-channel.png`` (the detail window a click on one tile opens), then quits. The engines
are its own (a temporary state home), stopped at the end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import QApplication

from labctl.clock import real_elapsed_s
from labctl.gui.main_window import MainWindow

#: Real time runs this many times faster on the demonstration's simulated station.
DEMO_SPEED = 20
#: The first J–V: two scan rates, done in a few seconds; the second: a light soak first, then three rates.
FIRST_RUN = {"sample": ["wbg_ref"], "scan_rates_V_s": [0.1, 1.0], "v_min_V": -0.1, "v_max_V": 1.3, "step_V": 0.01}
SECOND_RUN = {"sample": ["wbg_5avai"], "scan_rates_V_s": [0.05, 0.1, 1.0], "v_min_V": -0.1, "v_max_V": 1.3,
              "step_V": 0.01, "light_soak_s": 60.0}
#: The picture is taken once the second run is this far.
SHOT_AT_FRACTION = 0.2
TIMEOUT_S = 240.0
#: The aging phase: every cell of the aging station under ISOS-L-1 (virtual time, as fast as it runs).
AGING_STATION = "sim-aging"
AGING_RUN = {"samples": ["all"], "preset": "ISOS-L-1", "duration_h": 300.0, "interval_s": 60.0, "jv_every_h": 6.0}
#: Real seconds of the aging run before its pictures are taken (the run goes on into the engine's stop).
AGING_SHOT_AFTER_S = 45.0
#: The tile "clicked" for the channel detail picture.
DETAIL_CHANNEL = "ch07"


class Demo:
    """Drives the window; ``exit_code`` is 0 when the picture shows what it should."""

    def __init__(self, window: MainWindow, screenshot: Path | None) -> None:
        self.window = window
        self.screenshot = screenshot
        self.exit_code = 0
        self.queued = False
        self.started = real_elapsed_s()
        self.analysed = False
        self.phase = "jv"
        self.aging_target: Any = None
        self.aging_started: float | None = None
        window.bridge.attached.connect(self._queue_runs)
        window.browser.plotted.connect(self._analyse_once)
        self.timer = QTimer(window)
        self.timer.setInterval(250)
        self.timer.timeout.connect(self._check)
        self.timer.start()

    def _queue_runs(self, _station: Any, _snapshot: Any) -> None:
        if self.phase == "aging":
            self._start_aging()
            return
        if self.queued:
            return
        self.queued = True
        panel = self.window.procedure_panel
        panel.operator.setText("demo")
        panel.select("jv")
        for values in (FIRST_RUN, SECOND_RUN):
            panel.form.set_values(values)
            panel.submit("queue_add")
        self.window.bridge.call("queue_start")

    def _analyse_once(self) -> None:
        if not self.analysed:
            self.analysed = True
            self.window.browser.analyse()

    def ready(self) -> bool:
        """A finished run in the history and in the browser, analysed; the next one well under way."""
        queue = self.window.queue_panel
        current = queue.current
        finished = any(e.get("status") == "completed" for e in queue.history)
        running = current.uid is not None and current.bar.value() >= SHOT_AT_FRACTION * 1000
        shown = bool(self.window.browser.plot.blocks) and self.window.browser.metrics.table.rowCount() > 0
        return finished and running and shown

    def _check(self) -> None:
        timed_out = real_elapsed_s() - self.started > TIMEOUT_S
        if self.phase == "aging":
            if self.aging_started is not None and real_elapsed_s() - self.aging_started >= AGING_SHOT_AFTER_S:
                self._aging_pictures()
            elif timed_out:
                self._fail(f"the aging run did not start within {TIMEOUT_S:g} s")
            return
        if not (self.ready() or timed_out):
            return
        if timed_out:
            self._fail(f"not ready after {TIMEOUT_S:g} s; picture taken as it is")
        if self.screenshot is None:
            self.timer.stop()
            return
        self.window.views.setCurrentWidget(self.window.browser)  # the first run, finished and analysed
        self.save_screenshot(self.screenshot)
        self.window.views.setCurrentWidget(self.window.live)
        self.window.live.setCurrentWidget(self.window.live.jv)
        self.save_screenshot(self._beside("jv"))
        self.phase = "aging"
        self.started = real_elapsed_s()
        self._attach_aging()

    def _beside(self, suffix: str) -> Path:
        assert self.screenshot is not None
        return self.screenshot.with_name(f"{self.screenshot.stem}-{suffix}{self.screenshot.suffix}")

    def _fail(self, why: str) -> None:
        self.exit_code = 1
        self.window.events_pane.add("demo", why, "error")

    def _attach_aging(self) -> None:
        from labctl.gui.bridge import Target

        first = self.window.bridge.target
        assert first is not None
        self.aging_target = Target(AGING_STATION, first.data_dir, None, ("--clock", "virtual"))
        self.window.attach(self.aging_target)

    def _start_aging(self) -> None:
        if self.aging_started is not None:
            return
        self.aging_started = real_elapsed_s()
        self.window.bridge.call("submit", procedure="mppt", parameters=dict(AGING_RUN), operator="demo",
                                on_error=lambda exc: self._fail(f"aging run refused: {exc}"))
        self.window.views.setCurrentWidget(self.window.live)

    def _aging_pictures(self) -> None:
        self.timer.stop()
        live = self.window.live
        self.window.right.setSizes([240, 700, 60])  # room for the plots: what a user watching a run would do
        live.mppt.redraw()
        live.setCurrentWidget(live.mppt_tab)
        self.save_screenshot(self._beside("mppt"))
        live.setCurrentIndex(live.indexOf(live.dashboard_tab))
        for tile in live.dashboard.tiles.values():
            tile.update_metrics()
            tile.refresh()
        self.save_screenshot(self._beside("dashboard"))
        # a click on a tile: that channel's detail window, read from the run file on a worker thread
        detail = live.show_channel(DETAIL_CHANNEL)
        if detail is None:
            self._fail("the aging run has no file to show a channel's detail from")
            QApplication.quit()
            return
        deadline = real_elapsed_s() + 30.0

        def shot() -> None:
            if detail.data is None and real_elapsed_s() < deadline:
                QTimer.singleShot(200, shot)
                return
            if detail.data is None:
                self._fail("the channel detail was not read within 30 s")
            QApplication.processEvents()
            if not detail.grab().save(str(self._beside("channel"))):
                self.exit_code = 1
            QApplication.quit()

        shot()

    def save_screenshot(self, path: Path) -> None:
        QApplication.processEvents()  # a tab just shown lays itself out first
        path.parent.mkdir(parents=True, exist_ok=True)
        if not self.window.grab().save(str(path)):
            self.exit_code = 1
