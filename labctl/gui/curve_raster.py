"""Many curves drawn into one image off the GUI thread, and the plot item that shows it.

Qt strokes every curve of a plot on the GUI thread at each repaint; with 64 channels that is 25–70 ms in one
piece, often enough to make the window stutter. Here the curves are rasterised into a ``QImage`` (painting
on a QImage is allowed in any thread, and PyQt releases the interpreter lock while Qt paints), and the plot
only blits that image at each repaint: about a millisecond, whatever the number of channels.

:func:`render_curves` is the pure part (data ranges and pixel size in, image out); :class:`CurveRaster` is the
item in the plot's view box that shows the newest image in the data rectangle it was drawn for (stretched
while a newer one is on its way, e.g. during a zoom), and :class:`RasterWorker` renders in one background
thread, dropping requests a newer one has made obsolete.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyqtgraph as pg
import pyqtgraph.functions as fn
from PyQt6.QtCore import QObject, QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QImage, QPainter, QPen


@dataclass(frozen=True)
class Frame:
    """What to draw: curves (x, y in data units, colour; or a function that makes them, called where the frame
    is rendered), the data window and the image size in pixels."""

    curves: list[tuple[np.ndarray, np.ndarray, QColor]] | Callable[[], list[tuple[np.ndarray, np.ndarray, QColor]]]
    x_range: tuple[float, float]
    y_range: tuple[float, float]
    size_px: tuple[int, int]
    pixel_ratio: float = 1.0
    generation: int = 0
    bounds: tuple[float, float, float, float] | None = field(default=None)  # data extent: x0, x1, y0, y1


def render_curves(frame: Frame) -> QImage:
    """The frame's curves as a transparent image, row 0 at the top of the y range (1-pixel lines)."""
    width, height = (max(1, round(d * frame.pixel_ratio)) for d in frame.size_px)
    image = QImage(width, height, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    (x0, x1), (y0, y1) = frame.x_range, frame.y_range
    if x1 <= x0 or y1 <= y0:
        return image
    sx, sy = width / (x1 - x0), height / (y1 - y0)
    curves = frame.curves() if callable(frame.curves) else frame.curves
    painter = QPainter(image)
    try:
        for x, y, colour in curves:
            keep = np.isfinite(x) & np.isfinite(y)
            n = int(keep.sum())
            if n < 1:
                continue
            pen = QPen(colour)
            pen.setWidthF(frame.pixel_ratio)  # a 1-pixel line on any screen
            pen.setCosmetic(True)
            painter.setPen(pen)
            if n == 1:
                i = int(np.flatnonzero(keep)[0])
                painter.drawPoint(QPointF((x[i] - x0) * sx, (y1 - y[i]) * sy))
                continue
            polygon = fn.create_qpolygonf(n)
            points = fn.ndarray_from_qpolygonf(polygon)
            # far outside the image, Qt's rasteriser clips badly: keep vertices within a generous margin
            np.clip((x[keep] - x0) * sx, -4.0 * width, 5.0 * width, out=points[:, 0])
            np.clip((y1 - y[keep]) * sy, -4.0 * height, 5.0 * height, out=points[:, 1])
            painter.drawPolyline(polygon)
    finally:
        painter.end()
    return image


class CurveRaster(pg.GraphicsObject):
    """Shows the newest rendered frame in the data rectangle it was drawn for."""

    def __init__(self) -> None:
        super().__init__()
        self.image: QImage | None = None
        self.frame: Frame | None = None
        self._rect = QRectF()

    def set_image(self, frame: Frame, image: QImage) -> None:
        if self.frame is not None and frame.generation < self.frame.generation:
            return  # an older request finished late
        self.prepareGeometryChange()
        self.frame, self.image = frame, image
        (x0, x1), (y0, y1) = frame.x_range, frame.y_range
        self._rect = QRectF(x0, y0, x1 - x0, y1 - y0)
        self.informViewBoundsChanged()
        self.update()

    def clear(self) -> None:
        self.prepareGeometryChange()
        self.frame, self.image, self._rect = None, None, QRectF()
        self.update()

    def boundingRect(self) -> QRectF:
        return QRectF(self._rect)

    def dataBounds(self, ax: int, frac: float = 1.0, orthoRange: Any = None) -> tuple[float, float] | None:
        """The extent of the data drawn (what the view box's auto-range fits), not of the image."""
        if self.frame is None or self.frame.bounds is None:
            return None
        x0, x1, y0, y1 = self.frame.bounds
        return (x0, x1) if ax == 0 else (y0, y1)

    def paint(self, painter: QPainter, *_args: Any) -> None:
        if self.image is None or self._rect.isEmpty():
            return
        target = painter.transform().mapRect(self._rect)  # item (data) -> device pixels, y flipped by the view
        painter.save()
        painter.resetTransform()
        painter.drawImage(target, self.image)
        painter.restore()


class RasterWorker(QObject):
    """Renders frames in one background thread; the newest request wins, older waiting ones are dropped."""

    done = pyqtSignal(object, object)  # Frame, QImage (delivered on the thread that owns this object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._lock = threading.Lock()
        self._waiting: Frame | None = None
        self._busy = False

    def request(self, frame: Frame) -> None:
        with self._lock:
            self._waiting = frame
            if self._busy:
                return
            self._busy = True
        threading.Thread(target=self._loop, name="labctl-curve-raster", daemon=True).start()

    def _loop(self) -> None:
        while True:
            with self._lock:
                frame, self._waiting = self._waiting, None
                if frame is None:
                    self._busy = False
                    return
            image = render_curves(frame)
            try:
                self.done.emit(frame, image)
            except RuntimeError:  # the plot was closed meanwhile
                with self._lock:
                    self._busy = False
                return
