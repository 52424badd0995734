"""The Linux reference rows (experiments/_linux.py): UDP over loopback and fio."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from experiments import _linux as linux

UDP_KEYS = {"tx_mpps", "rx_mpps", "sent", "received", "dropped", "tx_calls", "rx_calls",
            "seconds", "pkt_size", "batch"}
FIO_KEYS = {"iops", "bw_mib_s", "lat_mean_us", "rw", "iodepth", "seconds", "fio_version",
            "device"}


@pytest.mark.parametrize("batch", [1, 32])
def test_udp_loopback_moves_packets(batch):
    r = linux.udp_loopback(pkt_size=64, batch=batch, seconds=0.2)
    assert set(r) == UDP_KEYS
    assert (r["pkt_size"], r["batch"]) == (64, batch)
    assert 0 < r["received"] <= r["sent"]
    # a receive call gets at most a batch, and the receiver's last call is its timeout
    assert r["rx_calls"] * batch > r["received"]
    assert r["rx_mpps"] > 0 and r["tx_mpps"] > 0
    assert 0.2 <= r["seconds"] < 1.0
    # one packet per call at batch 1; several per call when batched
    if batch == 1:
        assert r["tx_calls"] == r["sent"]
    else:
        assert r["tx_calls"] * batch >= r["sent"] > r["tx_calls"]


@pytest.mark.parametrize("kwargs, words", [
    (dict(pkt_size=63), "64..1514"), (dict(pkt_size=1515), "64..1514"),
    (dict(batch=0), "1..64"), (dict(batch=65), "1..64"),
    (dict(seconds=0), "> 0")])
def test_udp_loopback_rejects_bad_arguments(kwargs, words):
    with pytest.raises(ValueError, match=words.replace(".", r"\.")):
        linux.udp_loopback(**kwargs)


@pytest.mark.parametrize("kwargs, words", [
    (dict(rw="randread", iodepth=1), "'read' or 'write'"),
    (dict(rw="read", iodepth=0), "1..1024"), (dict(rw="write", iodepth=1025), "1..1024")])
def test_fio_rejects_bad_arguments(kwargs, words):
    with pytest.raises(ValueError, match=words.replace(".", r"\.")):
        linux.fio_iops(**kwargs)


@pytest.fixture(scope="module")
def fio():
    path = linux.ensure_fio()
    if path is None:
        if os.geteuid() == 0:
            pytest.fail(f"fio could not be installed as root: {linux.FIO_MISSING_REASON}")
        pytest.skip(f"not root: {linux.FIO_MISSING_REASON}")
    return path


@pytest.mark.parametrize("rw", ["read", "write"])
@pytest.mark.parametrize("iodepth", [1, 32])
def test_fio_iops(fio, rw, iodepth):
    r = linux.fio_iops(rw, iodepth, seconds=0.5, size_mb=32)
    assert set(r) == FIO_KEYS
    assert (r["rw"], r["iodepth"]) == (rw, iodepth)
    assert r["iops"] > 0 and r["bw_mib_s"] > 0 and r["lat_mean_us"] > 0
    assert r["fio_version"].startswith("fio-")
    assert not list(Path("/var/tmp").glob("redleaf-nb-fio-*")), "fio's file was left behind"
