"""Real threads and many asyncio tasks: nothing lost, nothing delivered twice,
never two leases on one key (DESIGN §3)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter

import leaseq

N_MESSAGES = 5000
N_THREADS = 8


def _run_threads(targets):
    threads = [threading.Thread(target=t, daemon=True) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a worker thread hung"


def test_threads_every_message_acked_exactly_once(make_queue):
    producer_q = make_queue()
    consumer_q = make_queue()  # a second queue object on the same store
    acked: list[int] = []
    acked_lock = threading.Lock()
    errors: list[BaseException] = []
    per_producer = N_MESSAGES // N_THREADS

    def produce(start):
        try:
            for i in range(start, start + per_producer):
                producer_q.put(i)
        except BaseException as exc:
            errors.append(exc)

    def consume():
        try:
            while True:
                with acked_lock:
                    if len(acked) >= N_MESSAGES:
                        return
                try:
                    lease = consumer_q.get(timeout=0.2)
                except leaseq.Empty:
                    continue
                consumer_q.ack(lease)  # raises LeaseLost if anyone else held it
                with acked_lock:
                    acked.append(lease.value)
        except BaseException as exc:
            errors.append(exc)
            with acked_lock:
                acked.extend([-1] * N_MESSAGES)  # stop everyone

    producers = [lambda s=s: produce(s) for s in range(0, N_MESSAGES, per_producer)]
    _run_threads(producers + [consume] * N_THREADS)
    assert errors == []
    assert sorted(acked) == list(range(N_MESSAGES))
    assert consumer_q.stats().total == 0


def test_threads_never_hold_one_key_twice(make_queue):
    # 8 producers hammer 16 keys with buffered follow-ups while 8 consumers
    # work on them; the newest value put on each key is the last delivered.
    q = make_queue(lease_timeout=60)
    n_keys, per_key = 16, 100
    held: set[str] = set()
    lock = threading.Lock()
    last_seen: dict[str, int] = {}
    double: list[str] = []
    regressed: list[str] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def produce(p):
        try:
            for i in range(per_key):
                for k in range(p, n_keys, N_THREADS):
                    q.put(i, key=f"k{k}", if_in_flight="buffer")
                time.sleep(0.0005)  # spread the puts so that many meet a held key
        except BaseException as exc:
            errors.append(exc)

    def consume():
        try:
            while not done.is_set():
                try:
                    lease = q.get(timeout=0.05)
                except leaseq.Empty:
                    continue
                with lock:
                    if lease.key in held:
                        double.append(lease.key)
                    held.add(lease.key)
                    if lease.value < last_seen.get(lease.key, -1):
                        regressed.append(lease.key)
                time.sleep(0.001)  # hold the key a moment while other consumers run
                with lock:
                    held.discard(lease.key)  # before ack: the key is still leased here
                    last_seen[lease.key] = lease.value
                q.ack(lease)
        except BaseException as exc:
            errors.append(exc)

    consumers = [threading.Thread(target=consume, daemon=True) for _ in range(N_THREADS)]
    for t in consumers:
        t.start()
    _run_threads([lambda p=p: produce(p) for p in range(N_THREADS)])
    # Producers are done: wait until every key has delivered its final value.
    for _ in range(1200):  # up to 30 s for slow stores on a loaded machine
        with lock:
            if len(last_seen) == n_keys and all(v == per_key - 1 for v in last_seen.values()):
                break
        time.sleep(0.025)
    done.set()
    for t in consumers:
        t.join(timeout=10)
    assert errors == []
    assert double == []
    assert regressed == []  # newest wins: a key never goes back to an older value
    assert last_seen == {f"k{k}": per_key - 1 for k in range(n_keys)}
    assert q.stats().total == 0


def test_threads_mixed_get_and_take_never_double_deliver(make_queue):
    q = make_queue()
    n = 2000
    got: list[str] = []
    lock = threading.Lock()
    errors: list[BaseException] = []
    for i in range(n):
        q.put(i, key=f"k{i}")

    def by_get():
        try:
            while True:
                try:
                    lease = q.get(block=False)
                except leaseq.Empty:
                    return
                q.ack(lease)
                with lock:
                    got.append(lease.key)
        except BaseException as exc:
            errors.append(exc)

    def by_take(offset):
        try:
            for i in range(offset, n, 4):
                try:
                    lease = q.take(f"k{i}", block=False)
                except leaseq.Empty:
                    continue
                q.ack(lease)
                with lock:
                    got.append(lease.key)
        except BaseException as exc:
            errors.append(exc)

    _run_threads([by_get] * 4 + [lambda o=o: by_take(o) for o in range(4)])
    assert errors == []
    assert Counter(got) == Counter(f"k{i}" for i in range(n))


async def test_many_asyncio_consumers(make_async_queue):
    q = make_async_queue()
    n_tasks, n_messages = 100, 2000
    acked: list[int] = []

    async def consume():
        while len(acked) < n_messages:
            try:
                lease = await q.get(timeout=0.2)
            except leaseq.Empty:
                continue
            await q.ack(lease)
            acked.append(lease.value)

    consumers = [asyncio.create_task(consume()) for _ in range(n_tasks)]
    await asyncio.sleep(0)  # let them block first: every put then wakes a waiter
    for i in range(n_messages):
        await q.put(i)
    await asyncio.wait_for(asyncio.gather(*consumers), timeout=30)
    assert sorted(acked) == list(range(n_messages))
    assert (await q.stats()).total == 0


async def test_many_asyncio_take_waiters_each_get_their_key(make_async_queue):
    q = make_async_queue()
    n = 300

    async def take(i):
        lease = await q.take(f"k{i}", timeout=10)
        await q.ack(lease)
        return lease.value

    waiters = [asyncio.create_task(take(i)) for i in range(n)]
    await asyncio.sleep(0.01)
    for i in reversed(range(n)):
        await q.put(i, key=f"k{i}")
    assert await asyncio.wait_for(asyncio.gather(*waiters), timeout=30) == list(range(n))


async def test_sync_producer_thread_wakes_async_consumers(make_queue, make_async_queue):
    sync_q = make_queue()
    async_q = make_async_queue()
    n = 500
    got: list[int] = []

    async def consume():
        while len(got) < n:
            try:
                lease = await async_q.get(timeout=0.2)
            except leaseq.Empty:
                continue
            got.append(lease.value)
            await async_q.ack(lease)

    tasks = [asyncio.create_task(consume()) for _ in range(10)]
    await asyncio.sleep(0.01)
    producer = threading.Thread(target=lambda: [sync_q.put(i) for i in range(n)])
    producer.start()
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)
    producer.join()
    assert sorted(got) == list(range(n))
