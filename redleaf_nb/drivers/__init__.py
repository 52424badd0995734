"""Driver domains: they reach devices only through registers, rings or device objects."""
