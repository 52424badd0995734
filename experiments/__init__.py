"""The paper's experiments, one public module each (``experiments.comm_cost`` ...).

Each public module defines ``EXPERIMENT`` (see :mod:`redleaf_nb.experiments`, the
harness that finds them: ``redleaf_nb.experiments.discover()``); modules whose
name starts with ``_`` are helpers the experiments share.
"""
