"""``labctl gui --demo``: the window drives itself through a short session on the simulated station — two
J–V runs queued from the form, the queue started, the first run finished and shown in the browser with its
analysis while the second is measured — and, with ``--screenshot``, saves a picture of the whole window and
quits. The engine it uses is its own (a temporary state home, real time sped up), stopped at the end."""

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


class Demo:
    """Drives the window; ``exit_code`` is 0 when the picture shows what it should."""

    def __init__(self, window: MainWindow, screenshot: Path | None) -> None:
        self.window = window
        self.screenshot = screenshot
        self.exit_code = 0
        self.queued = False
        self.started = real_elapsed_s()
        self.analysed = False
        window.bridge.attached.connect(self._queue_runs)
        window.browser.plotted.connect(self._analyse_once)
        self.timer = QTimer(window)
        self.timer.setInterval(250)
        self.timer.timeout.connect(self._check)
        self.timer.start()

    def _queue_runs(self, _station: Any, _snapshot: Any) -> None:
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
        if not (self.ready() or timed_out):
            return
        self.timer.stop()
        if timed_out:
            self.exit_code = 1
            self.window.events_pane.add("demo", f"not ready after {TIMEOUT_S:g} s; picture taken as it is",
                                        "error")
        if self.screenshot is not None:
            self.save_screenshot(self.screenshot)
            QApplication.quit()

    def save_screenshot(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not self.window.grab().save(str(path)):
            self.exit_code = 1
