"""Figures 6-8 experiments run on tiny parameters: shapes, units, bounds, the report."""
from __future__ import annotations

import json

import numpy as np
import pytest

from redleaf_nb import experiments as ex
from redleaf_nb.configs import CONFIGS

TINY = {"ixgbe": dict(seconds=0.002, repeats=1, linux=True, linux_seconds=0.05),
        "nullnet": dict(seconds=0.002, repeats=1),
        "nvme": dict(seconds=0.002, repeats=1, linux=True, linux_seconds=0.2)}


@pytest.fixture(scope="module", params=sorted(TINY))
def result(request, tmp_path_factory):
    name = request.param
    out = tmp_path_factory.mktemp(name)
    return name, ex.run(name, out=out, **TINY[name]), out


def test_every_configuration_and_batch_is_measured(result):
    name, table, _ = result
    mine = table[table.config != "Linux"]
    directions = {"ixgbe": {"RX", "TX"}, "nullnet": {"packets"}, "nvme": {"read", "write"}}[name]
    assert set(mine.direction) == directions
    assert len(mine) == len(CONFIGS) * len(directions) * 2
    assert set(mine.config) == set(CONFIGS) and set(mine.batch) == {1, 32}
    assert (mine.rate > 0).all()
    assert set(mine.bound) <= {"device", "host"}


def test_rates_never_exceed_the_device_capacity(result):
    name, table, _ = result
    mine = table[(table.config != "Linux") & np.isfinite(table.capacity)]
    assert (mine.rate <= mine.capacity * 1.02).all()        # the device allows no more
    if "host_rate" in table:
        assert (mine.host_rate > 0).all()
        assert (mine.device_cycles_per_pkt if name == "ixgbe" else
                mine.device_cycles_per_io).gt(0).all()    # the model's cost is reported


def test_units_are_stated(result):
    name, table, out = result
    unit = {"ixgbe": "mpps", "nullnet": "mpps", "nvme": "kiops"}[name]
    scale = {"mpps": 1e6, "kiops": 1e3}[unit]
    assert np.allclose(table[unit], table.rate / scale)
    meta = json.loads((out / f"{name}.json").read_text())
    assert meta["targets"] and meta["machine"]["cpu_model"]
    assert (out / f"{name}.png").stat().st_size > 10_000


def test_linux_analogs_are_measured_in_the_same_run(result):
    name, table, _ = result
    if name == "nullnet":
        return
    linux = table[table.config == "Linux"]
    assert len(linux) == 4 and (linux.rate > 0).all() and (linux.bound == "host").all()


@pytest.mark.parametrize("name,bad,message", [
    ("ixgbe", {"pkt_size": 10}, r"pkt_size=10 is out of range: must be a int in \[64, 1514\]"),
    ("ixgbe", {"profile": "e1000"}, "is not one of x520, xl710"),
    ("nvme", {"queue_entries": 4096}, r"out of range: must be a int in \[2, 1024\]"),
    ("nullnet", {"large_batch": 65}, r"out of range: must be a int in \[1, 64\]"),
])
def test_bad_parameters_are_refused_with_the_valid_range(name, bad, message):
    with pytest.raises(ex.ParamError, match=message):
        ex.get(name).resolve(**bad)
