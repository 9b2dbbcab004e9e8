"""The desktop window (`labctl gui`): a front end of the station's engine, built on PyQt6 and pyqtgraph.

Everything slow — the engine link, HDF5 files, the analysis — runs off the GUI thread and reaches the
widgets through Qt signals (:mod:`labctl.gui.bridge` for the engine, :mod:`labctl.gui.tasks` for the rest).
"""
