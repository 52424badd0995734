"""Datasheets: each device's register map, bits and descriptor layouts, in one place.

As RedLeaf's ``ixgbe_device`` crate is shared by the driver and the code that
talks to the hardware, each module here is imported by both the device model
(``devices/``) and its driver (``redleaf_nb/drivers/``): no constant is copied
by hand. Neutral ground, like ``lowlevel/``: it imports nothing of the project.
"""
