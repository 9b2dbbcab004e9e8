"""What every instrument mock shares: a name in the world, client sessions, a lock, injectable faults.

A mock is constructed ``MockCls(world, name, **options)``; ``name`` is the instrument's station name and
its terminal in the world's wiring. :meth:`MockInstrument.connect` opens a client session
(:class:`MockConnection`, its own output queue) used by the in-process ``SimAdapter`` and by the TCP
server; subclasses implement :meth:`MockInstrument.handle` (one program message in, the reply or None out).

Faults (:class:`Faults`, settable from code or from a station's dict) act on the sessions the way broken
hardware does:

- ``timeout``: the next N queries (an int) or each query with a probability (a float) get no reply; the
  message is lost, ``read()`` charges the session's timeout to the world's clock and raises TimeoutError;
- ``garble``: the reply is replaced by non-printable garbage (same counting);
- ``late``: the reply comes, but after the client gave up waiting: ``read()`` times out as for ``timeout``, and
  the reply arrives just after, ahead of the reply to the next message (an instrument answers in order). A
  client that does not resynchronise reads it as the answer to its next query. Over TCP the server sends it
  ``late_s`` real seconds late;
- ``drop``: the session dies on the next N messages / with a probability: that call and every later one on
  the session raise ConnectionResetError; ``connect()`` works again unless ``drop_permanent``, which also
  kills live sessions and refuses new ones;
- physical faults go to the world: ``lamp_failure`` (the light named by the ``light`` option),
  ``heater_runaway`` and ``open_sensor`` (the cryostat stage).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np

_GARBAGE = [chr(c) for c in (*range(1, 9), *range(14, 32), 127)]
_PHYSICAL = ("lamp_failure", "heater_runaway", "open_sensor")


@dataclass
class Faults:
    """Injected faults of one instrument (see the module docstring for each field's meaning)."""

    timeout: int | float = 0
    garble: int | float = 0
    late: int | float = 0
    late_s: float = 1.0
    drop: int | float = 0
    drop_permanent: bool = False
    lamp_failure: bool = False
    heater_runaway: bool = False
    open_sensor: bool = False

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Faults:
        """From a station file's ``faults = {...}`` table; unknown names raise ValueError."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown fault(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        faults = cls(**dict(values))
        if isinstance(faults.late_s, bool) or not isinstance(faults.late_s, int | float) or not faults.late_s >= 0:
            raise ValueError(f"fault late_s: a delay in seconds >= 0, got {faults.late_s!r}")
        for name in ("timeout", "garble", "drop", "late"):
            value = getattr(faults, name)
            if isinstance(value, bool):
                setattr(faults, name, 1.0 if value else 0)
            elif isinstance(value, float) and not 0.0 <= value <= 1.0:
                raise ValueError(f"fault {name}: a probability must be in [0, 1], got {value}")
            elif isinstance(value, int) and value < 0:
                raise ValueError(f"fault {name}: a count must be >= 0, got {value}")
        return faults

    def fires(self, name: str, rng: np.random.Generator) -> bool:
        """Whether fault ``name`` hits this message (a count is used up, a probability is rolled)."""
        value = getattr(self, name)
        if isinstance(value, float):
            return value > 0 and float(rng.random()) < value
        if value > 0:
            setattr(self, name, value - 1)
            return True
        return False


class LateReply(str):
    """A reply that leaves the instrument after the client's timeout (``delay_s`` late over TCP)."""

    delay_s: float = 0.0

    @classmethod
    def of(cls, reply: str, delay_s: float) -> LateReply:
        late = cls(reply)
        late.delay_s = float(delay_s)
        return late


class MockConnection:
    """One client session with an instrument mock: ``write(message)``, ``read() -> reply``.

    ``output`` is the instrument's output queue (what a new message may still discard, SCPI -410);
    ``arrived`` what has already reached the client's side of the link and no instrument can take back.
    """

    def __init__(self, instrument: MockInstrument, timeout_s: float) -> None:
        self.instrument = instrument
        self.timeout_s = float(timeout_s)
        self.output: deque[str] = deque()
        self.arrived: deque[str] = deque()
        self.alive = True
        self._awaiting_reply = False
        self._late_pending: str | None = None

    def _late_arrives(self) -> None:
        if self._late_pending is not None:
            self.arrived.append(self._late_pending)
            self._late_pending = None

    def _check(self) -> None:
        if not self.alive or self.instrument.faults.drop_permanent:
            self.alive = False
            raise ConnectionResetError(f"{self.instrument.name}: connection reset by peer")

    def write(self, message: str) -> None:
        """Send one program message; the reply (if any) waits in this session's output queue."""
        self._check()
        inst = self.instrument
        with inst.lock:
            if inst.faults.fires("drop", inst.rng):
                self.alive = False
                raise ConnectionResetError(f"{inst.name}: connection reset by peer")
            self._late_arrives()  # the late reply was on its way before this message
            query = inst.is_query(message)
            if self.output:  # a new message while a reply is unread: the reply is discarded
                self.output.clear()
                inst.on_query_interrupted()
            self._awaiting_reply = query
            if query and inst.faults.fires("timeout", inst.rng):
                return
            reply = inst.process(message)
            if reply is not None:
                if inst.faults.fires("garble", inst.rng):
                    n = int(inst.rng.integers(4, 16))
                    reply = "".join(_GARBAGE[int(i)] for i in inst.rng.integers(0, len(_GARBAGE), n))
                elif query and inst.faults.fires("late", inst.rng):
                    reply = LateReply.of(reply, inst.faults.late_s)
                self.output.append(reply)

    def read(self) -> str:
        """The next reply; with none, charge the timeout to the world's clock and raise TimeoutError."""
        self._check()
        inst = self.instrument
        with inst.lock:
            self._late_arrives()
            if self.arrived:
                self._awaiting_reply = False
                return self.arrived.popleft()
            if self.output and not isinstance(self.output[0], LateReply):
                self._awaiting_reply = False
                return self.output.popleft()
            if self.output:  # the reply is late: it arrives only after this read has given up
                self._late_pending = str(self.output.popleft())
            elif not self._awaiting_reply:
                inst.on_query_unterminated()
            self._awaiting_reply = False
        inst.world.clock.sleep(self.timeout_s)
        raise TimeoutError(f"{inst.name}: no reply within {self.timeout_s:g} s")

    def take_replies(self) -> list[str]:
        """Every reply waiting (the TCP server sends them in order, a :class:`LateReply` after its delay)."""
        self._check()
        with self.instrument.lock:
            self._late_arrives()
            replies = [*self.arrived, *self.output]
            self.arrived.clear()
            self.output.clear()
            self._awaiting_reply = False
            return replies

    def clear_output(self) -> None:
        """Device clear of the session's output queue (a driver draining a stale reply)."""
        self._check()
        with self.instrument.lock:
            self.arrived.clear()
            self.output.clear()
            self._awaiting_reply = False

    def close(self) -> None:
        self.alive = False


class MockInstrument:
    """Base of every instrument mock (see the module docstring).

    Options every mock accepts: ``faults`` (a :class:`Faults` or a dict), ``timeout_s`` (what a session's
    read waits before giving up, charged to the clock), ``light`` (the light a lamp fault acts on).
    """

    model: ClassVar[str] = ""
    idn: str = ""
    timeout_s: float = 2.0

    def __init__(self, world: Any, name: str, **options: Any) -> None:
        self.world = world
        self.name = name
        make_lock = getattr(world.clock, "lock", None)
        # Held while the instrument waits (integration, settling): on virtual time a lock the clock knows.
        self.lock = make_lock() if callable(make_lock) else threading.RLock()
        self.rng = world.rng_for(name)
        self.timeout_s = float(options.pop("timeout_s", self.timeout_s))
        self.light_name = str(options.pop("light", "light"))
        # The stage a temperature controller drives (heater runaway and open sensor act on it).
        self.stage_name = str(options.pop("stage", "stage"))
        faults = options.pop("faults", None)
        self.options = options
        self.faults = Faults()
        if faults is not None:
            self.set_faults(faults)

    def split_messages(self, pending: bytes) -> tuple[list[bytes], bytes]:
        """Complete program messages in bytes received over TCP, and the incomplete rest.

        Newline-terminated by default; a model whose clients end messages otherwise overrides this.
        """
        *lines, rest = pending.split(b"\n")
        return lines, rest

    def connect(self, timeout_s: float | None = None) -> MockConnection:
        """Open a client session (refused while a permanent drop is injected)."""
        if self.faults.drop_permanent:
            raise ConnectionRefusedError(f"{self.name}: connection refused")
        return MockConnection(self, self.timeout_s if timeout_s is None else timeout_s)

    def terminal(self, channel: str | int | None = None) -> str:
        """The world terminal of this instrument (or of one of its channels)."""
        return self.name if channel is None else f"{self.name}:{channel}"

    # ------------------------------------------------------------------------------------ faults
    def set_faults(self, faults: Faults | Mapping[str, Any] | None = None, **changes: Any) -> None:
        """Replace the faults (a Faults or a dict) and/or change some: ``set_faults(timeout=2)``."""
        if isinstance(faults, Faults):
            base = {f.name: getattr(faults, f.name) for f in fields(Faults)}
        elif faults is None:
            base = {f.name: getattr(self.faults, f.name) for f in fields(Faults)}
        else:
            base = dict(faults)
        base.update(changes)
        new = Faults.from_dict(base)
        for kind in _PHYSICAL:
            if getattr(new, kind) != getattr(self.faults, kind):
                target = self.light_name if kind == "lamp_failure" else self.stage_name
                self.world.set_fault(kind, getattr(new, kind), target=target)
        self.faults = new

    # ----------------------------------------------------------------------------------- messages
    def process(self, message: str) -> str | None:
        """Handle one message with the world brought up to the clock, under the mock's lock.

        Not under the world's lock: a mock may wait (integration time) while handling a message, and on
        virtual time every other instrument must be able to use the world meanwhile. The world locks
        itself for each change or reading."""
        with self.lock:
            self.world.sync()
            return self.handle(message)

    def handle(self, message: str) -> str | None:
        """One program message in, the reply (without terminator) or None out. Subclasses implement it."""
        raise NotImplementedError(f"{type(self).__name__} must implement handle()")

    def is_query(self, message: str) -> bool:
        """Whether a message expects a reply (SCPI: it contains a '?'); other dialects override."""
        return "?" in message

    def on_query_interrupted(self) -> None:
        """A new message arrived before the previous reply was read (SCPI: -410)."""

    def on_query_unterminated(self) -> None:
        """A read with nothing asked (SCPI: -420)."""
