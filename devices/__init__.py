"""Simulated hardware, kept apart from the OS as real hardware is.

Drivers reach a device only through its register file (an int64 array whose
address is the device's MMIO base) and through rings and buffers in host
memory whose addresses they program into those registers. The device model
runs between the host's calls (``step``), on its own clock, as a device runs
beside the CPU; the cycles it spends are measured and kept out of host costs.
"""
