"""Power, labgrid-style, one backend a module: relay-board drivers (LCUS, Numato, KMTronic,
DTR/RTS lines) over a pyserial port, `RelayPower` / `LabgridPower` (both `MinOffTimePower`) /
`ProcessPower` / `ProcessGroupPower` / `LabgridSuppliedProcess` / `ManualPower` implementing
`harness.protocols.Power`, and a simulated relay board on a pty (`c2c-relay-sim`). The one
home of power: device drivers (harness.device) take theirs from here."""

from __future__ import annotations

from harness.faults.power.base import HeldPower, MinOffTimePower, RelayBoard
from harness.faults.power.kmtronic import KmtronicBoard
from harness.faults.power.labgrid import LabgridPower, LabgridSuppliedProcess
from harness.faults.power.lcus import LcusBoard
from harness.faults.power.manual import ManualPower
from harness.faults.power.modemlines import ModemLineRelay
from harness.faults.power.numato import NumatoBoard
from harness.faults.power.process import ProcessGroupPower, ProcessPower
from harness.faults.power.relay import RelayPower, relay_power
from harness.faults.power.simulator import RelaySimulator

BOARDS = {"lcus": LcusBoard, "numato": NumatoBoard, "kmtronic": KmtronicBoard,
          "modemlines": ModemLineRelay}
"""Profile `[power] driver = "..."` names for relay boards."""

__all__ = [
    "BOARDS",
    "HeldPower",
    "KmtronicBoard",
    "LabgridPower",
    "LabgridSuppliedProcess",
    "LcusBoard",
    "ManualPower",
    "MinOffTimePower",
    "ModemLineRelay",
    "NumatoBoard",
    "ProcessGroupPower",
    "ProcessPower",
    "RelayBoard",
    "RelayPower",
    "RelaySimulator",
    "relay_power",
]
