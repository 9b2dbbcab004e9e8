"""Protocol tests for the Wavelabs SINUS-70 driver (WLRC XML over TCP).

Message syntax follows the WLRC usage in public lab code that drives SinusGUI (greyltc/centralcontrol
``wavelabs.py``: ActivateRecipe, SetRecipeParam/GetRecipeParam, StartRecipe -> sRunID, CancelRecipe (-4001:
nothing to cancel, a success), GetRunStatus -> sStatus, WaitForRunFinished and WaitForResultAvailable before
GetResult -> sVal and GetDataSeries -> DataSeries; replies carry iEC/sError).
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
    with expected_protocol(WavelabsSinus70, [], address="wavelabs://127.0.0.1:3334",
                           recipe="AM1.5G_half") as inst:
        assert inst.address == "wavelabs://127.0.0.1:3334"
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


def test_cancel_with_no_run_in_progress_is_success_without_a_warning(caplog):
    # A dark run closes the shutter of a light that is already off: -4001, "no run in progress".
    with expected_protocol(WavelabsSinus70, [
        (msg('<CancelRecipe iSeq="1"/>'), msg('<CancelRecipe iSeq="1" iEC="-4001" sError="nothing to do"/>')),
    ]) as inst:
        with caplog.at_level("INFO"):
            inst.close_shutter()
        assert not inst.light_on
    assert "-4001" not in caplog.text and not [r for r in caplog.records if r.levelname == "WARNING"]


def test_minus_4001_to_another_command_is_an_error():
    with expected_protocol(WavelabsSinus70, [
        (msg('<ActivateRecipe iSeq="1" sRecipe="AM1.5G"/>'),
         msg('<ActivateRecipe iSeq="1" iEC="-4001" sError="no run in progress"/>')),
    ]) as inst:
        with pytest.raises(InstrumentError, match="-4001"):
            inst.activate_recipe()


def test_the_link_listens_for_sinusgui_and_has_no_resync_marker():
    from drivers.link_settings import resolve

    settings = resolve(WavelabsSinus70, "wavelabs://")
    assert settings.interface == "wlrc" and settings["listen"] == "127.0.0.1:3334"
    assert resolve(WavelabsSinus70, "wavelabs://0.0.0.0:4000")["listen"] == "0.0.0.0:4000"
    relay = resolve(WavelabsSinus70, "wavelabs-relay://relay-pc")
    assert relay["relay"] == "relay-pc:3335" and "listen" not in relay.values
    assert resolve(WavelabsSinus70, "sim://wavelabs_sinus70")["listen"] == "127.0.0.1:3334"
    with expected_protocol(WavelabsSinus70, []) as inst:
        assert inst.sync_marker(7) is None


def param(seq: int, name: str, value: str | None = None) -> tuple[str, str]:
    """Set (with ``value``) or get a parameter of the AM1.5G recipe's Light device, with its reply."""
    if value is None:
        return (msg(f'<GetRecipeParam iSeq="{seq}" sRecipe="AM1.5G" iStep="1" sDevice="Light" sParam="{name}"/>'),
                ok("GetRecipeParam", seq, ' sVal="60000"'))
    return (msg(f'<SetRecipeParam iSeq="{seq}" sRecipe="AM1.5G" iStep="1" sDevice="Light" sParam="{name}" '
                f'sVal="{value}"/>'), ok("SetRecipeParam", seq))


def measurement_run(first: int, run_id: str, *, was_on: bool) -> list[tuple[str, str]]:
    """The exchange of a measurement run starting at iSeq ``first``: cancel, Duration 1000 ms, start, wait for
    the run and its result, Duration back to 60 s and (if the light was on) start again."""
    n = first
    cancel = ok("CancelRecipe", n) if was_on else msg(f'<CancelRecipe iSeq="{n}" iEC="-4001" sError="no run"/>')
    pairs = [(msg(f'<CancelRecipe iSeq="{n}"/>'), cancel), param(n + 1, "Duration"),
             param(n + 2, "Duration", "1000"),
             (msg(f'<ActivateRecipe iSeq="{n + 3}" sRecipe="AM1.5G"/>'), ok("ActivateRecipe", n + 3)),
             (msg(f'<StartRecipe iSeq="{n + 4}"/>'), ok("StartRecipe", n + 4, f' sRunID="{run_id}"')),
             (msg(f'<WaitForRunFinished iSeq="{n + 5}" fTimeout="3000" sRunID="{run_id}"/>'),
              ok("WaitForRunFinished", n + 5)),
             (msg(f'<WaitForResultAvailable iSeq="{n + 6}" fTimeout="3000" sRunID="{run_id}"/>'),
              ok("WaitForResultAvailable", n + 6)),
             param(n + 7, "Duration", "60000"),
             (msg(f'<ActivateRecipe iSeq="{n + 8}" sRecipe="AM1.5G"/>'), ok("ActivateRecipe", n + 8))]
    if was_on:
        pairs.append((msg(f'<StartRecipe iSeq="{n + 9}"/>'), ok("StartRecipe", n + 9, ' sRunID="lit-2"')))
    return pairs


def test_read_irradiance_makes_a_measurement_run_and_reads_its_result_after_it_is_available():
    # SinusGUI evaluates a run once it has ended: the result is read only after WaitForResultAvailable.
    with expected_protocol(WavelabsSinus70, [
        *measurement_run(1, "m1", was_on=True),
        (msg('<GetResult iSeq="11" sParam="totalirradiance_300_1200" sRunID="m1"/>'),
         ok("GetResult", 11, ' sVal="998.5"')),
    ]) as inst:
        inst.light_on, inst._recipe_active = True, True
        assert inst.read_irradiance_mW_cm2() == pytest.approx(99.85)
        assert inst.light_on and inst.run_id == "lit-2"  # lit again afterwards


def test_read_irradiance_is_zero_while_light_off():
    with expected_protocol(WavelabsSinus70, []) as inst:
        assert inst.read_irradiance_mW_cm2() == 0.0


def test_an_unreadable_irradiance_raises():
    with expected_protocol(WavelabsSinus70, [
        *measurement_run(1, "m1", was_on=True),
        (msg('<GetResult iSeq="11" sParam="totalirradiance_300_1200" sRunID="m1"/>'),
         ok("GetResult", 11, ' sVal="n/a"')),
    ]) as inst:
        inst.light_on, inst._recipe_active = True, True
        with pytest.raises(InstrumentError, match="unreadable sVal"):
            inst.read_irradiance_mW_cm2()


def test_read_spectrum_parses_data_series():
    reply = msg('<GetDataSeries iSeq="10" iEC="0">'
                '<DataSeries sName="Wavelenght" sUnit="nm" sType="x">400;500;600</DataSeries>'
                '<DataSeries sName="Irradiance" sUnit="W/m^2/nm" sType="y">1.1;1.5;1.3</DataSeries>'
                '</GetDataSeries>')
    with expected_protocol(WavelabsSinus70, [
        *measurement_run(1, "r1", was_on=False),
        (msg('<GetDataSeries iSeq="10" iStep="1" sDevice="LE" sCurveName="Irradiance-Wavelength" '
             'sAttributes="raw" sRunID="r1"/>'), reply),
    ]) as inst:
        spectrum = inst.read_spectrum()
        assert spectrum.wavelength_nm.tolist() == [400.0, 500.0, 600.0]
        assert spectrum.irradiance.tolist() == [1.1, 1.5, 1.3]
        assert spectrum.unit == "W/m^2/nm"
        assert not inst.light_on


def test_read_spectrum_without_series_raises():
    with expected_protocol(WavelabsSinus70, [
        *measurement_run(1, "r1", was_on=False),
        (msg('<GetDataSeries iSeq="10" iStep="1" sDevice="LE" sCurveName="Irradiance-Wavelength" '
             'sAttributes="raw" sRunID="r1"/>'), ok("GetDataSeries", 10)),
    ]) as inst:
        with pytest.raises(InstrumentError, match="no usable spectrum"):
            inst.read_spectrum()


def test_a_failed_measurement_run_restores_the_recipe_duration():
    with expected_protocol(WavelabsSinus70, [
        *measurement_run(1, "m1", was_on=False)[:4],
        (msg('<StartRecipe iSeq="5"/>'), msg('<StartRecipe iSeq="5" iEC="8" sError="light engine fault"/>')),
        param(6, "Duration", "60000"),
        (msg('<ActivateRecipe iSeq="7" sRecipe="AM1.5G"/>'), ok("ActivateRecipe", 7)),
    ]) as inst:
        with pytest.raises(InstrumentError, match="light engine fault"):
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
