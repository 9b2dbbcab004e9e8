"""How tests/data/v1_jv_wbg_ref.h5 was made: run with the format-1 store of labctl (commit 50c806c), not with today's.

Kept for the record; running it now would write a format-2 file.
"""
import shutil
import tempfile
from pathlib import Path

from labctl.runner import Runner
from labctl.station import Station
from procedures.jv_hysteresis import JVHysteresis

out = Path(tempfile.mkdtemp())
proc = JVHysteresis(sample=["wbg_ref"], v_min_V=-0.1, v_max_V=1.3, step_V=0.02, scan_rates_V_s=[0.1, 1.0],
                    direction="RS+FS", nplc=0.1, suns=1.0, prebias_V=1.5, prebias_s=1.0, spo_s=10.0)
result = Runner(proc, station=Station.load("sim"), directory=out, operator="format-1 fixture").run()
print(result.status, result.reason, result.path)
shutil.copy(result.path, "tests/data/v1_jv_wbg_ref.h5")
