"""Placement: the directory part picks the name server, the full name the object server."""

import subprocess
import sys

from ostor.common.ids import ServiceType, format_id, make_service_id, service_type
from ostor.engine.placement import Placement, directory_part, jump_hash, stable_hash


def _placement(n=4):
    return Placement([make_service_id(ServiceType.NS, i) for i in range(n)],
                     [make_service_id(ServiceType.OS, n + i) for i in range(n)])


def test_directory_part():
    assert directory_part("b", "x.txt") == "b/"
    assert directory_part("b", "a/b/c.txt") == "b/a/b/"
    assert directory_part("b", "a//") == "b/a//"


def test_same_directory_same_name_server():
    p = _placement()
    assert len({p.name_server_for("bk", f"dir/file{i}") for i in range(100)}) == 1
    assert len({p.name_server_for("bk", f"dir{i}/file") for i in range(100)}) == 4


def test_full_name_spreads_object_servers():
    p = _placement()
    assert len({p.object_server_for("bk", f"dir/file{i}") for i in range(100)}) == 4
    parts = {p.object_server_for("bk", "big", part) for part in range(1, 50)}
    assert len(parts) == 4  # parts of one upload land on several object servers


def test_hash_is_stable_across_processes():
    code = "from ostor.engine.placement import stable_hash; print(stable_hash('bucket/key é'))"
    out = subprocess.check_output([sys.executable, "-c", code], text=True)
    assert int(out) == stable_hash("bucket/key é")


def test_jump_hash_moves_few_keys_when_growing():
    moved = sum(jump_hash(stable_hash(str(i)), 4) != jump_hash(stable_hash(str(i)), 5) for i in range(10000))
    assert 1500 < moved < 2500  # about 1/5 move, not all


def test_service_ids_carry_their_type():
    ns = make_service_id(ServiceType.NS, 2)
    assert format_id(ns) == "0800000000000002"
    assert service_type(make_service_id(ServiceType.OS, 5)) is ServiceType.OS
    assert format_id(make_service_id(ServiceType.VOLUME, 1)) == "0100000000000001"
