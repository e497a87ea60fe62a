"""A whole simulated board: chip chain + fan controller + power stage + physics. Sans-IO.

The parts are coupled the way copper couples them: the power stage's output feeds the
chips (no Vout, no answers), the chips' clocks and voltage set the power, the power
and fan set the temperatures, temperature and clock margin set the hardware-error
rate the chips show, and the sensors report what the physics computed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from drivers.sim.chips import SimChain
from drivers.sim.errors import SimConfigError
from drivers.sim.faults import FaultState
from drivers.sim.i2c_bus import (
    EMC2101_ADDRESS,
    TPS546_ADDRESS,
    PowerStageInputs,
    SimEMC2101,
    SimI2CBus,
    SimTPS546,
    internal_board_temp,
)
from drivers.sim.physics import BoardPhysics, PhysicsParams


@dataclass(frozen=True, slots=True)
class SimBoardConfig:
    """Everything that defines a simulated board. ``hashrate_hps`` and
    ``sim_ticket_difficulty`` are simulation-only settings (see ``drivers.sim.chips``)."""

    model: str = "BM1370"
    chips: int = 1
    hashrate_hps: float = 100_000.0
    sim_ticket_difficulty: float | None = None
    voltage_domains: int | None = None  # default: pairs of chips in series, or one per domain
    power_on: bool = True  # power stage output enabled at start (like a board that boots on)
    seed: int | None = None
    physics: PhysicsParams = field(default_factory=PhysicsParams)

    @property
    def domains(self) -> int:
        if self.voltage_domains is not None:
            if self.voltage_domains < 1 or self.chips % self.voltage_domains:
                raise SimConfigError("chips must split evenly into voltage_domains")
            return self.voltage_domains
        if self.chips == 1:
            return 1
        return self.chips // 2 if self.chips % 2 == 0 else self.chips


class SimBoard:
    """Owns the parts and steps them together; ``advance(now)`` is the only clock input."""

    def __init__(self, config: SimBoardConfig, faults: FaultState | None = None) -> None:
        self.config = config
        self.faults = faults if faults is not None else FaultState()
        self.chain = SimChain(
            config.model,
            config.chips,
            hashrate_hps=config.hashrate_hps,
            sim_ticket_difficulty=config.sim_ticket_difficulty,
            faults=self.faults,
            seed=config.seed,
        )
        self.physics = BoardPhysics(self.chain.model, config.chips, config.physics)
        vcore = self.chain.model.default_mv / 1000.0
        vin = 5.0 if config.chips == 1 else 12.0
        # The stage is sized for its load: over-current trips at twice the rated current.
        rated_amps = self.physics.rated_power_w * config.chips / config.domains / vcore
        self.emc2101 = SimEMC2101(self.faults)
        self.tps546 = SimTPS546(
            self.faults,
            vcore * config.domains,
            config.power_on,
            vin,
            oc_fault_a=max(30.0, 2.0 * rated_amps),
        )
        self.i2c = SimI2CBus({EMC2101_ADDRESS: self.emc2101, TPS546_ADDRESS: self.tps546})
        self.unplugged = False  # mains/USB gone: nothing on the board has power
        self._last: float | None = None
        self.sync_power()

    @property
    def vcore(self) -> float:
        """Voltage across each chip (the stage feeds the domains in series)."""
        return self.tps546.vout / self.config.domains

    def sync_power(self) -> None:
        self.chain.set_powered(not self.unplugged and self.physics.powered(self.vcore))

    def advance(self, now: float, max_hashes: int | None = None) -> None:
        """Step physics and parts to ``now``; ``max_hashes`` bounds the chain's work."""
        if self._last is None:
            self._last = now
            self.chain.advance(now)
            return
        dt = max(0.0, now - self._last)
        self._last = now
        chips = self.chain.chips
        dead = self.faults.dead_chips
        mhz = [c.frequency_mhz if c.index not in dead else 0.0 for c in chips]
        active = [c.job is not None for c in chips]
        st = self.physics.step(
            dt, mhz, self.vcore, self.emc2101.duty, active, fan_stalled=self.faults.fan_stalled
        )
        for chip, cs in zip(chips, st.chips, strict=True):
            chip.error_rate = cs.error_rate
        ambient = self.config.physics.ambient_c
        hottest = st.hottest_c
        self.emc2101.update(hottest, internal_board_temp(ambient, hottest), st.fan_rpm)
        vin = self.tps546.inputs.vin_nominal
        self.tps546.update(PowerStageInputs(st.power_out_w, st.vr_temp_c, vin))
        self.sync_power()
        self.chain.advance(now, max_hashes)

    def status(self) -> dict[str, object]:
        """A JSON-ready snapshot for ``blvm sim --json`` and the control socket."""
        st = self.physics.state
        chain = self.chain
        return {
            "model": self.config.model,
            "chips": self.config.chips,
            "powered": chain.powered,
            "baud": chain.baud,
            "vout_v": round(self.tps546.vout, 4),
            "vcore_v": round(self.vcore, 4),
            "power_w": round(st.power_out_w, 3),
            "fan_rpm": round(st.fan_rpm),
            "fan_duty": round(self.emc2101.duty, 3),
            "vr_temp_c": round(st.vr_temp_c, 2),
            "chip_temp_c": [round(c.temp_c, 2) for c in st.chips],
            "chip_mhz": [round(c.frequency_mhz, 2) for c in chain.chips],
            "chip_addresses": [c.address for c in chain.chips],
            "error_rate": [_round_sig(c.error_rate) for c in chain.chips],
            "modelled_hashrate_hps": sum(
                c.modelled_hashrate for c in chain.chips if c.job is not None
            ),
            "hashrate_hps_setting": chain.hashrate_hps,
            "sim_ticket_difficulty": chain.sim_ticket_difficulty,
            "real_hashes": chain.stats.real_hashes,
            "nonces_tx": chain.stats.nonces_tx,
            "hw_errors_tx": chain.stats.hw_errors_tx,
            "frames_rx": chain.stats.frames_rx,
            "jobs_rx": chain.stats.jobs_rx,
            "crc_errors_rx": chain.stats.crc_errors_rx,
            "faults": self.faults.as_dict(),
        }


def _round_sig(x: float) -> float:
    return 0.0 if x == 0 else round(x, max(0, 3 - math.floor(math.log10(abs(x)))))
