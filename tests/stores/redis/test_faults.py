"""Faults on redis:// with real processes, real SIGKILLs and real servers.

Leases here expire on the server's clock (the point is the server deciding), so
lease timeouts are short and the tests wait for real expiry. Restarts and
``CLIENT KILL`` run on a private ``redis-server`` (AOF on), never the shared one.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import random
import signal
import threading
import time
from pathlib import Path

import pytest

import leaseq
from leaseq.errors import LeaseLost, StoreUnavailable

pytestmark = pytest.mark.slow
CTX = mp.get_context("spawn")


def _hold_and_hang(url: str, ready: str) -> None:
    q = leaseq.Queue(url, lease_timeout=1.0)
    lease = q.get(timeout=10)
    Path(ready).write_text(json.dumps([lease.id, lease.token]))
    time.sleep(600)  # "working" until SIGKILLed


def test_a_consumer_killed_mid_lease_loses_the_message_to_the_next(redis_url, tmp_path):
    q = leaseq.Queue(redis_url)
    q.put("job", key="j")
    marker = tmp_path / "held"
    proc = CTX.Process(target=_hold_and_hang, args=(redis_url, str(marker)))
    proc.start()
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    held_id, held_token = json.loads(marker.read_text())
    assert q.qsize() == 0  # still leased by the dead process
    again = q.get(timeout=10)  # wakes at the expiry the server decides
    assert (again.key, again.id, again.attempt) == ("j", held_id, 2)
    assert again.token != held_token
    q.ack(again)
    assert q.stats().total == 0
    q.close()


def _abandoning_worker(url: str, seed: int, out: str) -> None:
    rnd = random.Random(seed)
    acked, lost = [], 0
    with leaseq.Queue(url, lease_timeout=0.3) as q:
        while True:
            try:
                lease = q.get(timeout=3)
            except leaseq.Empty:
                break
            r = rnd.random()
            if r < 0.1:
                continue  # abandoned: the lease runs out and someone else gets it
            if r < 0.15:
                time.sleep(0.4)  # too slow: the ack must be refused
            try:
                q.ack(lease)
            except LeaseLost:
                lost += 1
                continue
            acked.append(lease.key)
    Path(out).write_text(json.dumps({"acked": acked, "lost": lost}))


def test_four_processes_with_random_abandonment_ack_every_key_exactly_once(redis_url, tmp_path):
    n = 400
    q = leaseq.Queue(redis_url)
    q.put_many([(i, {"key": f"k{i}"}) for i in range(n)])
    outs = [tmp_path / f"w{i}.json" for i in range(4)]
    procs = [
        CTX.Process(target=_abandoning_worker, args=(redis_url, i, str(outs[i]))) for i in range(4)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
        assert p.exitcode == 0
    acked = [k for o in outs for k in json.loads(o.read_text())["acked"]]
    assert sorted(acked) == sorted(f"k{i}" for i in range(n))  # none lost, none twice
    assert sum(json.loads(o.read_text())["lost"] for o in outs) > 0  # the fence was tested
    assert q.stats().total == 0
    q.close()


def test_a_waiter_still_wakes_after_client_kill_type_pubsub(own_server):
    server = own_server()
    consumer = leaseq.Queue(server.url + "?poll_interval=30")  # no help from the poll
    producer = leaseq.Queue(server.url)
    got: list[object] = []
    t = threading.Thread(target=lambda: got.append(consumer.get(timeout=20).value))
    t.start()
    sub = consumer.store._subscriber.subscribed
    assert sub.wait(5)
    assert int(server.cli("CLIENT", "KILL", "TYPE", "pubsub")) >= 1
    deadline = time.monotonic() + 5
    while not sub.is_set() and time.monotonic() < deadline:
        time.sleep(0.01)  # wait for the resubscription...
    time.sleep(0.05)  # ...and its catch-up recheck
    start = time.monotonic()
    producer.put("after the kill")
    t.join(20)
    assert got == ["after the kill"]
    assert time.monotonic() - start < 2  # woken by the new subscription, not a timeout
    consumer.close()
    producer.close()


def test_a_waiter_blocked_across_a_server_restart_gets_the_next_put(own_server):
    server = own_server()
    consumer = leaseq.Queue(server.url + "?poll_interval=30")  # the reconnect must do it
    got: list[object] = []
    errors: list[BaseException] = []

    def consume() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                got.append(consumer.get(timeout=30).value)
                return
            except StoreUnavailable:
                time.sleep(0.05)  # the server is down for a moment: the waiter retries
            except BaseException as exc:
                errors.append(exc)
                return

    t = threading.Thread(target=consume)
    t.start()
    assert consumer.store._subscriber.subscribed.wait(5)
    server.restart()
    producer = leaseq.Queue(server.url)
    producer.put("after the restart")
    t.join(30)
    assert errors == [] and got == ["after the restart"]
    consumer.close()
    producer.close()


def _flood(url: str, out: str, stop: str) -> None:
    acked: list[str] = []
    failed = 0
    q = leaseq.Queue(url)
    i = 0
    while not Path(stop).exists():
        key = f"k{i}"
        i += 1
        try:
            q.put(i, key=key)
        except StoreUnavailable:
            failed += 1  # unknown outcome: may or may not be stored; never counted
            time.sleep(0.01)
            continue
        acked.append(key)
        if len(acked) % 50 == 0:
            _report(out, acked, failed)
    _report(out, acked, failed)
    q.close()


def _report(out: str, acked: list[str], failed: int) -> None:
    tmp = out + ".tmp"
    Path(tmp).write_text(json.dumps({"acked": acked, "failed": failed}))
    os.replace(tmp, out)  # the reader never sees a half-written file


def test_a_put_flood_across_a_restart_keeps_every_acknowledged_put(own_server, tmp_path):
    server = own_server("--appendfsync", "always")
    out, stop = tmp_path / "acked.json", tmp_path / "stop"
    proc = CTX.Process(target=_flood, args=(server.url, str(out), str(stop)), daemon=True)
    proc.start()
    try:
        deadline = time.monotonic() + 30
        while (not out.exists() or len(json.loads(out.read_text())["acked"]) < 200) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.01)
        server.proc.kill()  # SIGKILL mid-flood; AOF with fsync always keeps every reply
        server.proc.wait()
        server.proc = None
        time.sleep(0.2)
        server.start()
        time.sleep(0.5)
    finally:
        stop.write_text("")
        proc.join(60)
    assert proc.exitcode == 0
    report = json.loads(out.read_text())
    q = leaseq.Queue(server.url)
    present = set(q.keys())
    missing = [k for k in report["acked"] if k not in present]
    assert missing == []  # acknowledged <= present
    assert report["failed"] > 0  # the flood did run into the restart
    q.close()
