"""One owner per instrument: a station lock refuses a second holder — in this process or another — with a
message that names the holder, is keyed per address on real stations, and dies with its holder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from labctl.engine.errors import InstrumentBusy
from labctl.engine.locks import StationLock, engine_holding, holders, lock_keys
from labctl.station import Station

REAL = """
name = "{name}"
[instruments.smu]
driver = "keithley2450"
address = "{address}"
"""


def _real(tmp_path: Path, name: str, address: str) -> Station:
    path = tmp_path / f"{name}.toml"
    path.write_text(REAL.format(name=name, address=address), "utf-8")
    return Station.load(path)


def test_a_second_holder_in_the_same_process_is_refused_and_told_who_holds_it() -> None:
    station = Station.load("sim")
    with StationLock(station, command="labctl run jv --station sim"):
        with pytest.raises(InstrumentBusy) as refused:
            StationLock(station, command="labctl instruments").acquire()
    message = str(refused.value)
    assert "simulated station sim is in use by pid" in message
    assert str(os.getpid()) in message and "`labctl run jv --station sim`" in message and "since" in message
    StationLock(station).acquire().release()  # released at the end of the with block


def test_real_stations_are_locked_per_address_so_two_files_naming_one_smu_conflict(tmp_path: Path) -> None:
    first = _real(tmp_path, "glovebox", "TCPIP0::192.168.1.20::5025::SOCKET")
    same_smu = _real(tmp_path, "cryo", "tcpip::192.168.1.20::5025::socket")  # another spelling of it
    other_smu = _real(tmp_path, "other", "TCPIP::192.168.1.21::5025::SOCKET")
    assert [k.key for k in lock_keys(first)] == [k.key for k in lock_keys(same_smu)]
    with StationLock(first):
        with pytest.raises(InstrumentBusy, match=r"instrument smu at tcpip::192\.168\.1\.20"):
            StationLock(same_smu).acquire()
        StationLock(other_smu).acquire().release()


def test_the_engine_holding_a_station_is_found_through_its_lock(tmp_path: Path) -> None:
    station = Station.load("sim")
    assert engine_holding(station) is None
    with StationLock(station, engine=tmp_path / "state"):
        assert engine_holding(station) == tmp_path / "state"
        ((_key, holder),) = holders(station).values()
        assert holder.pid == os.getpid() and holder.engine == str(tmp_path / "state")


HOLD = """
import sys
from labctl.engine.locks import StationLock
from labctl.station import Station
lock = StationLock(Station.load(sys.argv[1]), command="labctl run iv --station bench")
lock.acquire()
print("held", flush=True)
sys.stdin.read()
"""


@pytest.mark.slow
def test_another_process_holding_an_instrument_is_named_and_its_death_frees_the_lock(tmp_path: Path) -> None:
    station = _real(tmp_path, "glovebox", "GPIB0::24::INSTR")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(station.source)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        refused = subprocess.run([sys.executable, "-m", "labctl.cli", "instruments", "--station",
                                  str(station.source)], capture_output=True, text=True, timeout=60,
                                 env=dict(os.environ, COLUMNS="300"))
        assert refused.returncode == 2
        assert f"instrument smu at GPIB0::24::INSTR is in use by pid {holder.pid}" in refused.stderr
        assert "`labctl run iv --station bench`" in refused.stderr
        holder.send_signal(signal.SIGKILL)  # no clean-up at all: the OS releases the lock
        holder.wait(10)
        with StationLock(station):
            pass
    finally:
        if holder.poll() is None:
            holder.kill()


def test_a_lock_directory_shared_by_the_lab_leaves_the_holder_readable(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    shared = tmp_path / "lab-locks"
    monkeypatch.setenv("LABCTL_LOCK_DIR", str(shared))
    station = Station.load("sim")
    with StationLock(station, command="labctl engine start --station sim"):
        (holder,) = shared.glob("*.json")
        assert holder.stat().st_mode & 0o777 == 0o644  # other users' refusals can name the holder
        with pytest.raises(InstrumentBusy, match="`labctl engine start --station sim`"):
            StationLock(station).acquire()
    assert not list(shared.glob("*.json"))
