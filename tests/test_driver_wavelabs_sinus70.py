"""Protocol tests for the Wavelabs SINUS-70 driver (WLRC XML over TCP).

Message syntax follows the WLRC usage in public lab code that drives SinusGUI (greyltc/centralcontrol
``wavelabs.py``: ActivateRecipe, SetRecipeParam/GetRecipeParam, StartRecipe -> sRunID, CancelRecipe,
GetRunStatus -> sStatus, GetResult -> sVal, GetDataSeries -> DataSeries; replies carry iEC/sError).
"""

from __future__ import annotations

import pytest
from pymeasure.test import expected_protocol

from drivers.base import LabInstrument
from drivers.wavelabs_sinus70 import WavelabsSinus70, parse_reply
from labctl.errors import InstrumentError, InstrumentTimeout
from labctl.roles import LightSource


def msg(body: str) -> str:
    return f"<WLRC>{body}</WLRC>"


def ok(command: str, seq: int, extra: str = "") -> str:
    return msg(f'<{command} iSeq="{seq}" iEC="0"{extra}/>')


CANCEL_1 = (msg('<CancelRecipe iSeq="1"/>'), ok("CancelRecipe", 1))
ACTIVATE_1 = (msg('<ActivateRecipe iSeq="1" sRecipe="AM1.5G"/>'), ok("ActivateRecipe", 1))


def test_is_a_light_source_and_lab_instrument():
    with expected_protocol(WavelabsSinus70, []) as inst:
        assert isinstance(inst, LightSource)
        assert isinstance(inst, LabInstrument)
        assert inst.name == "Wavelabs SINUS-70"


def test_constructor_passes_address_and_recipe():
    with expected_protocol(WavelabsSinus70, [], address="TCPIP::127.0.0.1::55555::SOCKET",
                           recipe="AM1.5G_half") as inst:
        assert inst.address == "TCPIP::127.0.0.1::55555::SOCKET"
        assert inst.recipe == "AM1.5G_half"


def test_activate_recipe():
    with expected_protocol(WavelabsSinus70, [ACTIVATE_1]) as inst:
        inst.activate_recipe()


def test_sequence_number_increments_per_message():
    with expected_protocol(WavelabsSinus70, [
        ACTIVATE_1,
        (msg('<GetRunStatus iSeq="2"/>'), ok("GetRunStatus", 2, ' sStatus="finished"')),
    ]) as inst:
        inst.activate_recipe()
        assert inst.run_status() == "finished"


def test_error_code_raises_with_text():
    with expected_protocol(WavelabsSinus70, [
        (msg('<ActivateRecipe iSeq="1" sRecipe="nope"/>'),
         msg('<ActivateRecipe iSeq="1" iEC="4" sError="Recipe nope not found"/>')),
    ]) as inst:
        with pytest.raises(InstrumentError, match="error 4: Recipe nope not found"):
            inst.activate_recipe("nope")


def test_icode_accepted_as_error_code():
    with expected_protocol(WavelabsSinus70, [
        (msg('<ActivateRecipe iSeq="1" sRecipe="AM1.5G"/>'),
         msg('<ActivateRecipe iSeq="1" iCode="7" sError="busy"/>')),
    ]) as inst:
        with pytest.raises(InstrumentError, match="error 7: busy"):
            inst.activate_recipe()


def test_late_reply_with_older_sequence_is_skipped():
    # A reply to an earlier (retried) request arrives first; the driver waits for its own iSeq.
    with expected_protocol(WavelabsSinus70, [
        (msg('<GetRunStatus iSeq="1"/>'), ok("GetRunStatus", 0, ' sStatus="running"')),
        (None, ok("GetRunStatus", 1, ' sStatus="finished"')),
    ]) as inst:
        assert inst.run_status() == "finished"


def test_reply_to_other_command_is_retried_then_times_out():
    wrong = ok("StartRecipe", 1)
    with expected_protocol(WavelabsSinus70, [
        (msg('<GetRunStatus iSeq="1"/>'), wrong),
        (msg('<GetRunStatus iSeq="1"/>'), wrong),
        (msg('<GetRunStatus iSeq="1"/>'), wrong),
    ]) as inst:
        with pytest.raises(InstrumentTimeout):
            inst.run_status()


def test_garbled_reply_is_asked_again():
    with expected_protocol(WavelabsSinus70, [
        (msg('<GetRunStatus iSeq="1"/>'), "<WLRC><GetRunSt"),
        (msg('<GetRunStatus iSeq="1"/>'), ok("GetRunStatus", 1, ' sStatus="running"')),
    ]) as inst:
        assert inst.run_status() == "running"
        assert inst.retry_count == 1


def test_set_intensity_suns_sets_recipe_intensity_percent_and_reactivates():
    with expected_protocol(WavelabsSinus70, [
        (msg('<SetRecipeParam iSeq="1" sRecipe="AM1.5G" iStep="1" sDevice="Light" sParam="Intensity" '
             'sVal="80"/>'), ok("SetRecipeParam", 1)),
        (msg('<ActivateRecipe iSeq="2" sRecipe="AM1.5G"/>'), ok("ActivateRecipe", 2)),
    ]) as inst:
        inst.set_intensity_suns(0.8)


def test_set_intensity_rejects_out_of_range_before_sending():
    with expected_protocol(WavelabsSinus70, []) as inst:
        with pytest.raises(ValueError):
            inst.set_intensity_suns(1.5)


def test_set_intensity_while_on_restarts_run():
    with expected_protocol(WavelabsSinus70, [
        ACTIVATE_1,
        (msg('<StartRecipe iSeq="2"/>'), ok("StartRecipe", 2, ' sRunID="run-1"')),
        (msg('<CancelRecipe iSeq="3"/>'), ok("CancelRecipe", 3)),
        (msg('<SetRecipeParam iSeq="4" sRecipe="AM1.5G" iStep="1" sDevice="Light" sParam="Intensity" '
             'sVal="50"/>'), ok("SetRecipeParam", 4)),
        (msg('<ActivateRecipe iSeq="5" sRecipe="AM1.5G"/>'), ok("ActivateRecipe", 5)),
        (msg('<StartRecipe iSeq="6"/>'), ok("StartRecipe", 6, ' sRunID="run-2"')),
    ]) as inst:
        inst.open_shutter()
        inst.set_intensity_suns(0.5)
        assert inst.light_on and inst.run_id == "run-2"


def test_intensity_percent_reads_recipe_param():
    with expected_protocol(WavelabsSinus70, [
        (msg('<GetRecipeParam iSeq="1" sRecipe="AM1.5G" iStep="1" sDevice="Light" sParam="Intensity"/>'),
         ok("GetRecipeParam", 1, ' sVal="100"')),
    ]) as inst:
        assert inst.intensity_percent == 100.0


def test_duration_s_reads_ms():
    with expected_protocol(WavelabsSinus70, [
        (msg('<GetRecipeParam iSeq="1" sRecipe="AM1.5G" iStep="1" sDevice="Light" sParam="Duration"/>'),
         ok("GetRecipeParam", 1, ' sVal="60000"')),
    ]) as inst:
        assert inst.duration_s == 60.0


def test_duration_s_setter_writes_ms_and_reactivates():
    with expected_protocol(WavelabsSinus70, [
        (msg('<SetRecipeParam iSeq="1" sRecipe="AM1.5G" iStep="1" sDevice="Light" sParam="Duration" '
             'sVal="3600000"/>'), ok("SetRecipeParam", 1)),
        (msg('<ActivateRecipe iSeq="2" sRecipe="AM1.5G"/>'), ok("ActivateRecipe", 2)),
    ]) as inst:
        inst.duration_s = 3600


def test_open_shutter_activates_and_starts_recipe():
    with expected_protocol(WavelabsSinus70, [
        ACTIVATE_1,
        (msg('<StartRecipe iSeq="2"/>'), ok("StartRecipe", 2, ' sRunID="2024-01-01_001"')),
    ]) as inst:
        inst.open_shutter()
        assert inst.light_on
        assert inst.run_id == "2024-01-01_001"


def test_close_shutter_cancels_recipe():
    with expected_protocol(WavelabsSinus70, [CANCEL_1]) as inst:
        inst.light_on = True
        inst.close_shutter()
        assert not inst.light_on


def test_close_shutter_tolerates_refusal_when_nothing_runs():
    with expected_protocol(WavelabsSinus70, [
        (msg('<CancelRecipe iSeq="1"/>'), msg('<CancelRecipe iSeq="1" iEC="12" sError="No run active"/>')),
        (msg('<GetRunStatus iSeq="2"/>'), ok("GetRunStatus", 2, ' sStatus="finished"')),
    ]) as inst:
        inst.close_shutter()
        assert not inst.light_on


def test_close_shutter_raises_when_run_continues():
    with expected_protocol(WavelabsSinus70, [
        (msg('<CancelRecipe iSeq="1"/>'), msg('<CancelRecipe iSeq="1" iEC="12" sError="denied"/>')),
        (msg('<GetRunStatus iSeq="2"/>'), ok("GetRunStatus", 2, ' sStatus="running"')),
    ]) as inst:
        with pytest.raises(InstrumentError, match="denied"):
            inst.close_shutter()


def test_benign_code_is_not_raised():
    with expected_protocol(WavelabsSinus70, [
        (msg('<CancelRecipe iSeq="1"/>'), msg('<CancelRecipe iSeq="1" iEC="-4001" sError="nothing to do"/>')),
    ]) as inst:
        inst.close_shutter()


def test_read_irradiance_converts_w_m2_to_mw_cm2():
    with expected_protocol(WavelabsSinus70, [
        (msg('<GetResult iSeq="1" sParam="totalirradiance_300_1200" sRunID="r7"/>'),
         ok("GetResult", 1, ' sVal="998.5"')),
    ]) as inst:
        inst.light_on, inst.run_id = True, "r7"
        assert inst.read_irradiance_mW_cm2() == pytest.approx(99.85)


def test_read_irradiance_is_zero_while_light_off():
    with expected_protocol(WavelabsSinus70, []) as inst:
        assert inst.read_irradiance_mW_cm2() == 0.0


def test_read_spectrum_parses_data_series():
    reply = msg('<GetDataSeries iSeq="1" iEC="0">'
                '<DataSeries sName="Wavelenght" sUnit="nm" sType="x">400;500;600</DataSeries>'
                '<DataSeries sName="Irradiance" sUnit="W/m^2/nm" sType="y">1.1;1.5;1.3</DataSeries>'
                '</GetDataSeries>')
    with expected_protocol(WavelabsSinus70, [
        (msg('<GetDataSeries iSeq="1" iStep="1" sDevice="LE" sCurveName="Irradiance-Wavelength" '
             'sAttributes="raw" sRunID="r1"/>'), reply),
    ]) as inst:
        inst.run_id = "r1"
        spectrum = inst.read_spectrum()
        assert spectrum.wavelength_nm.tolist() == [400.0, 500.0, 600.0]
        assert spectrum.irradiance.tolist() == [1.1, 1.5, 1.3]
        assert spectrum.unit == "W/m^2/nm"


def test_read_spectrum_without_series_raises():
    with expected_protocol(WavelabsSinus70, [
        (msg('<GetDataSeries iSeq="1" iStep="1" sDevice="LE" sCurveName="Irradiance-Wavelength" '
             'sAttributes="raw"/>'), ok("GetDataSeries", 1)),
    ]) as inst:
        with pytest.raises(InstrumentError, match="no usable spectrum"):
            inst.read_spectrum()


def test_identify_probes_link():
    with expected_protocol(WavelabsSinus70, [
        (msg('<GetRunStatus iSeq="1"/>'), ok("GetRunStatus", 1, ' sStatus="finished"')),
    ]) as inst:
        assert inst.identify() == "Wavelabs,SINUS-70,WLRC,recipe=AM1.5G"


def test_settings_snapshot():
    with expected_protocol(WavelabsSinus70, [
        (msg('<GetRecipeParam iSeq="1" sRecipe="AM1.5G" iStep="1" sDevice="Light" sParam="Intensity"/>'),
         ok("GetRecipeParam", 1, ' sVal="100"')),
        (msg('<GetRecipeParam iSeq="2" sRecipe="AM1.5G" iStep="1" sDevice="Light" sParam="Duration"/>'),
         ok("GetRecipeParam", 2, ' sVal="60000"')),
        (msg('<GetRunStatus iSeq="3"/>'), ok("GetRunStatus", 3, ' sStatus="finished"')),
    ]) as inst:
        assert inst.settings_snapshot() == {
            "recipe": "AM1.5G", "intensity_percent": 100.0, "intensity_suns": 1.0, "duration_s": 60.0,
            "light_on": False, "run_status": "finished"}


def test_safe_state_cancels_recipe():
    with expected_protocol(WavelabsSinus70, [CANCEL_1]) as inst:
        inst.safe_state()


def test_safe_state_reports_failed_step():
    with expected_protocol(WavelabsSinus70, [
        (msg('<CancelRecipe iSeq="1"/>'), msg('<CancelRecipe iSeq="1" iEC="9" sError="engine fault"/>')),
        (msg('<GetRunStatus iSeq="2"/>'), ok("GetRunStatus", 2, ' sStatus="running"')),
    ]) as inst:
        with pytest.raises(InstrumentError, match="could not reach safe state: cancel recipe"):
            inst.safe_state()


def test_reconnect_reapplies_intensity_and_recipe():
    replies = [
        (msg('<SetRecipeParam iSeq="3" sRecipe="AM1.5G" iStep="1" sDevice="Light" sParam="Intensity" '
             'sVal="50"/>'), ok("SetRecipeParam", 3)),
        (msg('<ActivateRecipe iSeq="4" sRecipe="AM1.5G"/>'), ok("ActivateRecipe", 4)),
    ]
    with expected_protocol(WavelabsSinus70, replies) as inst:
        inst._sequence = 2
        inst._intensity_percent = 50.0
        inst.reapply_configuration()


def test_parse_reply_rejects_missing_error_code():
    with pytest.raises(ValueError, match="error code"):
        parse_reply(msg('<StartRecipe iSeq="1"/>'))


def test_open_shutter_is_idempotent_while_the_run_lasts():
    with expected_protocol(WavelabsSinus70, [
        (msg('<GetRunStatus iSeq="1"/>'), ok("GetRunStatus", 1, ' sStatus="running"')),
    ]) as inst:
        inst.light_on, inst._recipe_active = True, True
        inst.open_shutter()
        assert inst.light_on


def test_open_shutter_starts_again_after_the_run_ended_by_itself():
    with expected_protocol(WavelabsSinus70, [
        (msg('<GetRunStatus iSeq="1"/>'), ok("GetRunStatus", 1, ' sStatus="finished"')),
        (msg('<StartRecipe iSeq="2"/>'), ok("StartRecipe", 2, ' sRunID="run-2"')),
    ]) as inst:
        inst.light_on, inst._recipe_active = True, True
        inst.open_shutter()
        assert inst.run_id == "run-2"


def test_duration_setter_while_on_restarts_run():
    with expected_protocol(WavelabsSinus70, [
        CANCEL_1,
        (msg('<SetRecipeParam iSeq="2" sRecipe="AM1.5G" iStep="1" sDevice="Light" sParam="Duration" '
             'sVal="60000"/>'), ok("SetRecipeParam", 2)),
        (msg('<ActivateRecipe iSeq="3" sRecipe="AM1.5G"/>'), ok("ActivateRecipe", 3)),
        (msg('<StartRecipe iSeq="4"/>'), ok("StartRecipe", 4, ' sRunID="run-3"')),
    ]) as inst:
        inst.light_on, inst._recipe_active = True, True
        inst.duration_s = 60
        assert inst.light_on and inst.run_id == "run-3"


def test_reconnect_during_a_run_does_not_reactivate_the_recipe():
    with expected_protocol(WavelabsSinus70, [
        (msg('<GetRunStatus iSeq="3"/>'), ok("GetRunStatus", 3, ' sStatus="running"')),
        (msg('<SetRecipeParam iSeq="4" sRecipe="AM1.5G" iStep="1" sDevice="Light" sParam="Intensity" '
             'sVal="50"/>'), ok("SetRecipeParam", 4)),
    ]) as inst:
        inst._sequence = 2
        inst._intensity_percent = 50.0
        inst.light_on, inst._recipe_active = True, True
        inst.reapply_configuration()


def test_open_shutter_accepts_a_refused_start_when_a_run_is_in_progress():
    with expected_protocol(WavelabsSinus70, [
        (msg('<StartRecipe iSeq="1"/>'), msg('<StartRecipe iSeq="1" iEC="6" sError="run in progress"/>')),
        (msg('<GetRunStatus iSeq="2"/>'), ok("GetRunStatus", 2, ' sStatus="running"')),
    ]) as inst:
        inst._recipe_active = True
        inst.open_shutter()
        assert inst.light_on and inst.run_id == ""


def test_open_shutter_raises_a_refused_start_when_nothing_runs():
    with expected_protocol(WavelabsSinus70, [
        (msg('<StartRecipe iSeq="1"/>'), msg('<StartRecipe iSeq="1" iEC="8" sError="light engine fault"/>')),
        (msg('<GetRunStatus iSeq="2"/>'), ok("GetRunStatus", 2, ' sStatus="finished"')),
    ]) as inst:
        inst._recipe_active = True
        with pytest.raises(InstrumentError, match="light engine fault"):
            inst.open_shutter()
        assert not inst.light_on
