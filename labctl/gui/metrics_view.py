"""A procedure's analysis shown for people: rows of metrics (a J–V's scans: Voc, Jsc, FF, PCE, ...) as a
table, everything else as a tree; numbers to four significant digits."""

from __future__ import annotations

from typing import Any

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

#: Columns shown first when a table has them: what tells rows apart, then the figures of merit.
FIRST_COLUMNS = ("block", "pixel", "channel", "direction", "scan_rate_V_s", "voc_V", "jsc_mA_cm2", "ff", "pce_pct",
                 "pmax_mW_cm2", "vmpp_V", "jmpp_mA_cm2")


def fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple) and len(value) > 8:
        return f"[{len(value)} values]"
    return str(value)


def _is_rows(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def fill_tree(parent: QTreeWidget | QTreeWidgetItem, data: dict[str, Any]) -> None:
    for key, value in data.items():
        node = QTreeWidgetItem([str(key), "" if isinstance(value, dict) or _is_rows(value) else fmt(value)])
        if isinstance(parent, QTreeWidget):
            parent.addTopLevelItem(node)
        else:
            parent.addChild(node)
        if isinstance(value, dict):
            fill_tree(node, value)
        elif _is_rows(value):
            for index, row in enumerate(value):
                fill_tree(node, {str(index): row})


class MetricsView(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel("no analysis yet: Analyse runs the procedure's analysis")
        self.title.setWordWrap(True)
        self.table = QTableWidget()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)  # type: ignore[union-attr]
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)  # type: ignore[union-attr]
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["metric", "value"])
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(self.tree)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(split, 1)

    def show_metrics(self, metrics: dict[str, Any], title: str) -> None:
        """The biggest list of rows goes to the table as well as to the tree."""
        self.title.setText(title)
        lists = [(key, value) for key, value in metrics.items() if _is_rows(value)]
        _key, rows = max(lists, key=lambda kv: len(kv[1])) if lists else ("", [])
        found = list(dict.fromkeys(k for row in rows for k, v in row.items() if not isinstance(v, dict | list)))
        # the table keeps to the figures of merit when it knows them; every value is in the tree below
        columns = [c for c in FIRST_COLUMNS if c in found] or found
        if len(rows) > 1:  # a column that is the same in every row (one pixel) says nothing per row
            columns = [c for c in columns if c == "block" or len({fmt(row.get(c)) for row in rows}) > 1]
        self.table.setRowCount(len(rows))
        self.table.setColumnCount(len(columns))
        self.table.setHorizontalHeaderLabels(columns)
        for r, row in enumerate(rows):
            for c, column in enumerate(columns):
                self.table.setItem(r, c, QTableWidgetItem(fmt(row.get(column, ""))))
        self.table.setVisible(bool(rows))
        self.tree.clear()
        fill_tree(self.tree, metrics)
        self.tree.resizeColumnToContents(0)
