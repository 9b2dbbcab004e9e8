"""The run engine as a process: one per station, owning its instruments, its session and its queue.

Front ends (the CLI, the GUI, scripts) attach to it over a local channel with :class:`EngineClient`; closing
or killing a front end never stops a run. See docs/engine.md.

Modules, each with one job: :mod:`~labctl.engine.paths` (where an engine keeps its state),
:mod:`~labctl.engine.locks` (one owner per instrument), :mod:`~labctl.engine.queue` (the persistent queue and
history), :mod:`~labctl.engine.session` (the bench, world and clock kept across runs),
:mod:`~labctl.engine.worker` (runs the queue in the session, resumes after a crash),
:mod:`~labctl.engine.alarms` (rules that notify), :mod:`~labctl.engine.outbox` (per-client bounded event
queues), :mod:`~labctl.engine.protocol` (the messages), :mod:`~labctl.engine.server` (the process),
:mod:`~labctl.engine.client` (what front ends use).
"""

from labctl.engine.client import EngineClient, find_engine
from labctl.engine.errors import EngineError, EngineUnavailable, InstrumentBusy

__all__ = ["EngineClient", "EngineError", "EngineUnavailable", "InstrumentBusy", "find_engine"]
