"""The simulated board: a BM13xx chain on a pty that really hashes, plus simulated I2C parts.

- :mod:`drivers.sim.chips`: sans-IO chip chain (``SimChain``): frames in, replies out.
- :mod:`drivers.sim.physics`: power, temperature, fan and error-rate model.
- :mod:`drivers.sim.i2c_bus`: EMC2101 and TPS546 at the register level behind an SMBus.
- :mod:`drivers.sim.board`: all of it coupled (``SimBoard``), still sans-IO.
- :mod:`drivers.sim.pty_board`: the board on a pseudo-terminal (``PtyBoard``).
- :mod:`drivers.sim.discovery`, :mod:`drivers.sim.control`: how others find and steer it.
- :mod:`drivers.sim.faults`: the faults it can show.
"""
