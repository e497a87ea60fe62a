"""Power, heat, fan and error-rate model of a simulated hashing board. Time is passed in.

Deliberately simple, first-order physics whose *directions* are right, so thermal and
tuning control loops meet the behaviour they must handle:

- chip power: dynamic ``k * f * V^2 * small_cores`` (less when idle) plus leakage that
  grows with voltage and temperature;
- chip temperature: one thermal mass per chip cooled towards ambient through a
  conductance that grows with fan airflow (exact exponential step, stable for any dt);
- fan: follows its PWM duty with a spin-up/spin-down lag; does not turn below a minimum
  duty; a stalled fan coasts down to zero;
- hardware-error rate: low at the rated point, rising steeply as the clock exceeds what
  the voltage and temperature support;
- power stage: efficiency, input current, and its own temperature.

Calibrated per model so a chip at its default clock and voltage, with the fan at full
speed, draws its rated power (from J/TH) and sits about 25 K above ambient.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from drivers.sim.models import SimChipModel

LEAKAGE_TEMP_CAP_C = 125.0
"""Leakage stops growing here so a board left without cooling heats up boundedly."""


@dataclass(frozen=True, slots=True)
class PhysicsParams:
    """Board constants; defaults resemble a small open-frame (Bitaxe-class) board."""

    ambient_c: float = 25.0
    fan_max_rpm: float = 6000.0
    fan_min_duty: float = 0.08  # below this duty the fan does not turn
    fan_tau_up_s: float = 1.5
    fan_tau_down_s: float = 3.0
    rise_full_fan_k: float = 25.0  # chip temperature rise at rated power, 100 % fan
    rise_no_fan_k: float = 150.0  # ... with no airflow
    thermal_tau_s: float = 15.0  # chip time constant at full airflow
    downstream_penalty: float = 0.12  # last chip's cooling deficit vs the first (airflow path)
    idle_activity: float = 0.15  # dynamic power fraction with the clock running but no job
    leakage_fraction: float = 0.08  # leakage share of rated power at 25 degC
    leakage_doubling_k: float = 35.0
    error_floor: float = 1e-4
    vr_efficiency: float = 0.90
    vr_rise_k_per_w_still: float = 12.0
    vr_rise_k_per_w_full: float = 5.0
    vr_tau_s: float = 8.0
    min_operating_fraction: float = 0.6  # chips are dark below this fraction of rated V


@dataclass(slots=True)
class ChipState:
    temp_c: float
    power_w: float = 0.0
    error_rate: float = 0.0


@dataclass(slots=True)
class BoardState:
    """What the physics computed at the last step (read by the simulated sensors)."""

    fan_rpm: float = 0.0
    vr_temp_c: float = 25.0
    power_out_w: float = 0.0
    power_in_w: float = 0.0
    chips: list[ChipState] = field(default_factory=list)

    @property
    def hottest_c(self) -> float:
        return max(c.temp_c for c in self.chips)


class BoardPhysics:
    """Steps the thermal/power state of ``n_chips`` chips of one model."""

    def __init__(
        self, model: SimChipModel, n_chips: int, params: PhysicsParams | None = None
    ) -> None:
        self.model = model
        self.params = p = params or PhysicsParams()
        self.v_rated = model.default_mv / 1000.0
        rated_ths = model.default_mhz * model.small_cores / 1e6
        self.rated_power_w = model.joules_per_th * rated_ths
        dynamic_w = self.rated_power_w * (1.0 - p.leakage_fraction)
        self.k_dynamic = dynamic_w / (model.default_mhz * self.v_rated**2 * model.small_cores)
        self.g_full = self.rated_power_w / p.rise_full_fan_k
        self.g_still = self.rated_power_w / p.rise_no_fan_k
        self.heat_capacity = self.g_full * p.thermal_tau_s
        self.state = BoardState(
            vr_temp_c=p.ambient_c, chips=[ChipState(p.ambient_c) for _ in range(n_chips)]
        )

    # -- pieces, public so tests can check each direction --------------------------------
    def chip_power(self, mhz: float, volts: float, temp_c: float, active: bool = True) -> float:
        if not self.powered(volts):
            return 0.0
        p = self.params
        activity = 1.0 if active else p.idle_activity
        dynamic = self.k_dynamic * mhz * volts**2 * self.model.small_cores * activity
        leak = (
            self.rated_power_w
            * p.leakage_fraction
            * (volts / self.v_rated) ** 2
            * 2.0 ** ((min(temp_c, LEAKAGE_TEMP_CAP_C) - 25.0) / p.leakage_doubling_k)
        )
        return dynamic + leak

    def powered(self, volts: float) -> bool:
        return volts >= self.v_rated * self.params.min_operating_fraction

    def stable_mhz(self, volts: float, temp_c: float) -> float:
        """Clock the silicon runs cleanly at, for this voltage and temperature."""
        derate = 1.0 - 0.005 * max(0.0, temp_c - 60.0)
        return self.model.default_mhz * (volts / self.v_rated) ** 2 * max(derate, 0.1)

    def error_rate(self, mhz: float, volts: float, temp_c: float) -> float:
        if mhz <= 0 or not self.powered(volts):
            return 0.0
        margin = mhz / self.stable_mhz(volts, temp_c)
        x = (margin - 1.2) * 35.0
        steep = 0.5 / (1.0 + math.exp(-x)) if x > -700 else 0.0
        return min(0.5, self.params.error_floor + steep)

    def airflow(self) -> float:
        return min(1.0, self.state.fan_rpm / self.params.fan_max_rpm)

    # -- the step ------------------------------------------------------------------------
    def step(
        self,
        dt: float,
        mhz: list[float],
        vcore: float,
        fan_duty: float,
        active: list[bool],
        fan_stalled: bool = False,
    ) -> BoardState:
        """Advance ``dt`` seconds with per-chip clocks, the core voltage and the fan duty."""
        p, st = self.params, self.state
        if dt <= 0:
            return st
        duty = min(max(fan_duty, 0.0), 1.0)
        target_rpm = 0.0 if fan_stalled or duty < p.fan_min_duty else duty * p.fan_max_rpm
        tau = p.fan_tau_up_s if target_rpm > st.fan_rpm else p.fan_tau_down_s
        st.fan_rpm = target_rpm + (st.fan_rpm - target_rpm) * math.exp(-dt / tau)
        air = self.airflow()
        g_board = self.g_still + (self.g_full - self.g_still) * air
        total = 0.0
        n = len(st.chips)
        for i, (chip, f, act) in enumerate(zip(st.chips, mhz, active, strict=True)):
            # Air warms as it passes the chain: downstream chips are cooled less.
            g = g_board * (1.0 - p.downstream_penalty * i / (n - 1) if n > 1 else 1.0)
            chip.power_w = self.chip_power(f, vcore, chip.temp_c, act)
            t_eq = p.ambient_c + chip.power_w / g
            chip.temp_c = t_eq + (chip.temp_c - t_eq) * math.exp(-dt * g / self.heat_capacity)
            chip.error_rate = self.error_rate(f, vcore, chip.temp_c)
            total += chip.power_w
        st.power_out_w = total
        st.power_in_w = total / p.vr_efficiency if total else 0.0
        loss = st.power_in_w - total
        vr_rise = p.vr_rise_k_per_w_still + (p.vr_rise_k_per_w_full - p.vr_rise_k_per_w_still) * air
        vr_eq = p.ambient_c + loss * vr_rise
        st.vr_temp_c = vr_eq + (st.vr_temp_c - vr_eq) * math.exp(-dt / p.vr_tau_s)
        return st
