"""The trusted low-level layer: raw memory access and the cycle counter.

Neutral ground: the kernel and the simulated devices import it, and it imports
nothing of the project, so hardware models never depend on the OS they serve.
"""
