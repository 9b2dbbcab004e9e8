"""What the window remembers between sessions (QSettings, an INI file beside the engines' state in the
labctl state home, so ``LABCTL_HOME`` keeps a test's or a demonstration's settings apart): the window's
geometry and splitters, the last station, the data folder, the last folder a run file was opened from."""

from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import QByteArray, QSettings


def settings_path() -> Path:
    from labctl.engine.paths import state_home

    return state_home() / "gui.ini"


class GuiSettings:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or settings_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.qsettings = QSettings(str(self.path), QSettings.Format.IniFormat)

    def text(self, key: str, default: str = "") -> str:
        value = self.qsettings.value(key, default)
        return str(value) if value is not None else default

    def set_text(self, key: str, value: str) -> None:
        self.qsettings.setValue(key, value)

    def bytes(self, key: str) -> QByteArray | None:
        value = self.qsettings.value(key)
        return value if isinstance(value, QByteArray) else None

    def set_bytes(self, key: str, value: QByteArray) -> None:
        self.qsettings.setValue(key, value)

    @property
    def last_station(self) -> str:
        return self.text("station/last", "sim")

    @last_station.setter
    def last_station(self, value: str) -> None:
        self.set_text("station/last", value)

    @property
    def data_dir(self) -> Path:
        return Path(self.text("engine/data_dir", str(Path.home() / "labctl-data")))

    def sync(self) -> None:
        self.qsettings.sync()
