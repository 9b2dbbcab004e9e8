"""Starting the window: the Qt application, the settings, the engine to attach to; ``labctl gui``."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from labctl.gui.bridge import Target

APP_FONT_PT = 10
#: Without --demo, the picture is taken this long after attaching (the queue and history have arrived).
SCREENSHOT_AFTER_MS = 3000


def run_gui(station: str | None = None, *, data_dir: Path | None = None, state_dir: Path | None = None,
            demo: bool = False, screenshot: Path | None = None) -> int:
    """Open the window attached to the station's engine (started if none runs); returns the exit code.

    ``demo``: a demonstration on its own simulated engine (see :mod:`labctl.gui.demo`); ``screenshot``: the
    window is drawn offscreen, saved there once the demonstration stands where it should, and closed.
    """
    if screenshot is not None:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    home = None
    start_options: tuple[str, ...] = ()
    if demo:
        from labctl.gui.demo import DEMO_SPEED

        home = Path(tempfile.mkdtemp(prefix="labctl-gui-demo-"))
        os.environ["LABCTL_HOME"] = str(home)  # its own engine, locks and settings: a user's are left alone
        data_dir = home / "data"
        start_options = ("--clock", "real", "--speed", str(DEMO_SPEED))
    from PyQt6.QtCore import QTimer
    from PyQt6.QtGui import QFont
    from PyQt6.QtWidgets import QApplication

    from labctl.gui.main_window import MainWindow
    from labctl.gui.settings import GuiSettings

    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationName("labctl")
    font = app.font()
    font.setPointSize(APP_FONT_PT)
    app.setFont(QFont(font))
    settings = GuiSettings()
    window = MainWindow(settings)
    if screenshot is not None:
        window.resize(1600, 1000)
    window.show()
    target = Target(station or settings.last_station, (data_dir or settings.data_dir).resolve(), state_dir,
                    start_options)
    driver = None
    if demo:
        from labctl.gui.demo import Demo

        driver = Demo(window, screenshot)
    elif screenshot is not None:
        shot = screenshot
        window.bridge.attached.connect(lambda *_: QTimer.singleShot(SCREENSHOT_AFTER_MS, lambda: (
            window.grab().save(str(shot)), QApplication.quit())))
        window.bridge.attach_failed.connect(lambda *_: (window.grab().save(str(shot)), QApplication.exit(1)))
    window.attach(target)
    code = app.exec()
    window.close()
    if driver is not None:
        code = code or driver.exit_code
    if home is not None:
        stop_engine(target)
        if driver is not None and driver.aging_target is not None:
            stop_engine(driver.aging_target)
        shutil.rmtree(home, ignore_errors=True)
    return code


def stop_engine(target: Target, timeout_s: float = 60.0) -> None:
    """Stop the demonstration's engine and wait until it is gone."""
    from labctl.clock import real_elapsed_s, real_pause
    from labctl.engine import EngineClient
    from labctl.engine.paths import pid_alive
    from labctl.errors import LabctlError
    from labctl.station import Station

    try:
        with EngineClient.for_station(Station.load(target.station), state_dir=target.state_dir,
                                      client="labctl gui demo") as client:
            pid = int(client.info["pid"])
            client.shutdown("the demonstration is over")
    except LabctlError:
        return
    deadline = real_elapsed_s() + timeout_s
    while pid_alive(pid) and real_elapsed_s() < deadline:
        real_pause(0.1)
