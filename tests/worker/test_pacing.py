"""Rate limits, min_interval and the circuit breaker, timed by the queue's fake clock."""

from __future__ import annotations

import threading
import time

import leaseq

from .conftest import wait_until


def _counting():
    done: list[float] = []
    lock = threading.Lock()

    def handler(value):
        with lock:
            done.append(value)

    return done, handler


def test_rate_limit_follows_the_clock(make_queue, start, clock):
    q = make_queue(name="jobs", clock=clock)
    for i in range(5):
        q.put(i)
    done, handler = _counting()
    w = leaseq.Worker(q, handler, rate_limit=(2, 10), concurrency=2, poll_interval=0.05)
    start(w)
    wait_until(lambda: len(done) == 2)
    time.sleep(0.3)  # the clock stands still: no third start, however long we wait
    assert len(done) == 2
    clock.advance(5)  # one token back (2 per 10 s)
    wait_until(lambda: len(done) == 3)
    time.sleep(0.2)
    assert len(done) == 3
    clock.advance(10)
    wait_until(lambda: len(done) == 5)


def test_min_interval_spaces_starts(make_queue, start, clock):
    q = make_queue(name="jobs", clock=clock)
    for i in range(3):
        q.put(i)
    done, handler = _counting()
    start(leaseq.Worker(q, handler, min_interval=60, poll_interval=0.05))
    wait_until(lambda: len(done) == 1)
    time.sleep(0.2)
    assert len(done) == 1
    clock.advance(60)
    wait_until(lambda: len(done) == 2)


def test_circuit_breaker_stops_claiming_after_failures(make_queue, start, clock):
    q = make_queue(name="jobs", clock=clock)
    for i in range(5):
        q.put(i)
    tried: list[int] = []

    def handler(value):
        tried.append(value)
        raise ConnectionError("downstream is down")

    breaker = leaseq.CircuitBreaker(failure_threshold=2, reset_timeout=30)
    retry = leaseq.Retry(max_attempts=10, backoff=1000)
    start(leaseq.Worker(q, handler, circuit_breaker=breaker, retry=retry, poll_interval=0.05))
    wait_until(lambda: len(tried) == 2)
    time.sleep(0.3)
    assert len(tried) == 2 and breaker.state == "open"
    clock.advance(30)  # half-open: exactly one probe
    wait_until(lambda: len(tried) == 3)
    time.sleep(0.3)
    assert len(tried) == 3 and breaker.state == "open"
