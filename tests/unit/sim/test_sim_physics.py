"""The board physics moves in the right directions (power, heat, fan lag, error rate)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.sim.models import get_model
from drivers.sim.physics import BoardPhysics

BM1370 = get_model("BM1370")


def settle(phys: BoardPhysics, seconds: float, mhz: float, volts: float, duty: float, **kw):
    t = 0.0
    while t < seconds:
        phys.step(
            0.5, [mhz] * len(phys.state.chips), volts, duty, [True] * len(phys.state.chips), **kw
        )
        t += 0.5
    return phys.state


def test_rated_point_draws_rated_power_and_runs_warm_not_hot():
    phys = BoardPhysics(BM1370, 1)
    state = settle(phys, 300, 525, 1.15, 1.0)
    # J/TH x TH/s at the rated point, leakage rising a little with temperature.
    assert state.power_out_w == pytest.approx(phys.rated_power_w, rel=0.1)
    assert 40 < state.chips[0].temp_c < 60
    assert state.chips[0].error_rate < 0.005


@given(f1=st.floats(100, 700), f2=st.floats(100, 700))
@settings(max_examples=200, deadline=None)
def test_more_frequency_more_power(f1, f2):
    phys = BoardPhysics(BM1370, 1)
    lo, hi = sorted((f1, f2))
    assert phys.chip_power(lo, 1.15, 50) <= phys.chip_power(hi, 1.15, 50)


@given(v1=st.floats(0.8, 1.4), v2=st.floats(0.8, 1.4))
@settings(max_examples=200, deadline=None)
def test_more_voltage_more_power(v1, v2):
    phys = BoardPhysics(BM1370, 1)
    lo, hi = sorted((v1, v2))
    assert phys.chip_power(525, lo, 50) <= phys.chip_power(525, hi, 50)


def test_higher_frequency_runs_hotter():
    cool = settle(BoardPhysics(BM1370, 1), 200, 400, 1.15, 0.6).chips[0].temp_c
    hot = settle(BoardPhysics(BM1370, 1), 200, 600, 1.15, 0.6).chips[0].temp_c
    assert hot > cool + 3


def test_more_fan_runs_cooler():
    temps = [
        settle(BoardPhysics(BM1370, 1), 200, 525, 1.15, d).chips[0].temp_c for d in (0.3, 0.6, 1.0)
    ]
    assert temps[0] > temps[1] > temps[2]


def test_no_fan_overheats():
    state = settle(BoardPhysics(BM1370, 1), 600, 525, 1.15, 1.0, fan_stalled=True)
    assert state.fan_rpm < 1
    assert state.chips[0].temp_c > 100


def test_fan_spins_up_with_lag_and_coasts_down():
    phys = BoardPhysics(BM1370, 1)
    phys.step(0.5, [525], 1.15, 1.0, [True])
    after_half_second = phys.state.fan_rpm
    assert 0 < after_half_second < 0.5 * phys.params.fan_max_rpm
    settle(phys, 20, 525, 1.15, 1.0)
    assert phys.state.fan_rpm == pytest.approx(phys.params.fan_max_rpm, rel=0.01)
    phys.step(0.5, [525], 1.15, 0.0, [True])
    assert phys.state.fan_rpm > 0.8 * phys.params.fan_max_rpm  # still coasting


def test_fan_below_minimum_duty_does_not_turn():
    state = settle(BoardPhysics(BM1370, 1), 30, 525, 1.15, 0.05)
    assert state.fan_rpm < 1


def test_temperature_has_thermal_mass():
    phys = BoardPhysics(BM1370, 1)
    phys.step(1.0, [525], 1.15, 1.0, [True])
    one_second = phys.state.chips[0].temp_c
    settled = settle(phys, 300, 525, 1.15, 1.0).chips[0].temp_c
    assert 25 < one_second < 25 + 0.3 * (settled - 25)


def test_error_rate_rises_with_frequency_low_voltage_and_heat():
    phys = BoardPhysics(BM1370, 1)
    base = phys.error_rate(525, 1.15, 50)
    assert phys.error_rate(700, 1.15, 50) > base
    assert phys.error_rate(525, 0.95, 50) > base
    assert phys.error_rate(600, 1.15, 95) > phys.error_rate(600, 1.15, 50)
    assert phys.error_rate(0, 1.15, 50) == 0.0


def test_idle_chip_draws_less_and_unpowered_draws_nothing():
    phys = BoardPhysics(BM1370, 1)
    assert phys.chip_power(525, 1.15, 40, active=False) < phys.chip_power(525, 1.15, 40)
    assert phys.chip_power(525, 0.0, 40) == 0.0


def test_power_stage_losses_heat_the_regulator():
    phys = BoardPhysics(BM1370, 4)
    state = settle(phys, 120, 525, 1.15, 0.5)
    assert state.power_in_w > state.power_out_w
    assert state.vr_temp_c > phys.params.ambient_c + 1


def test_downstream_chips_run_warmer():
    temps = [c.temp_c for c in settle(BoardPhysics(BM1370, 4), 200, 525, 1.15, 0.6).chips]
    assert temps == sorted(temps) and temps[-1] > temps[0] + 1
