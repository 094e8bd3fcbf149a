"""Tests for nano_forkrl.verifier.timebound: the deadline from the main thread, other threads, and threads of
multiprocessing.Pool workers (daemonic processes, where multiprocessing refuses to start children)."""
import multiprocessing
import threading
import time

from nano_forkrl.verifier.timebound import bounded


def _spin(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass
    return True


def _in_thread(fn, *args):
    out = []
    worker = threading.Thread(target=lambda: out.append(fn(*args)))
    worker.start()
    worker.join()
    return out[0]


def test_main_thread_result_and_deadline():
    assert bounded(_spin, (0.01,), 2.0) is True
    start = time.perf_counter()
    assert bounded(_spin, (30.0,), 0.2) is False
    assert time.perf_counter() - start < 5.0


def test_other_thread_result_and_deadline():
    assert _in_thread(bounded, _spin, (0.01,), 2.0) is True
    start = time.perf_counter()
    assert _in_thread(bounded, _spin, (30.0,), 0.2) is False
    assert time.perf_counter() - start < 5.0


def test_errors_are_false():
    assert bounded(lambda: 1 / 0, (), 1.0) is False
    assert _in_thread(bounded, lambda: 1 / 0, (), 1.0) is False


def _worker(seconds):
    return _in_thread(bounded, _spin, (seconds,), 1.0)


def test_thread_of_a_pool_worker():
    with multiprocessing.Pool(2) as pool:
        assert multiprocessing.current_process().daemon is False
        assert pool.map(_worker, [0.01, 0.01, 30.0]) == [True, True, False]


def test_many_threads_at_once():
    results = {}
    threads = [threading.Thread(target=lambda k=k: results.__setitem__(k, bounded(_spin, (0.05 if k % 2 else 30,), 1.0)))
               for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [results[k] for k in range(8)] == [False, True] * 4  # a slow sibling never delays a finished answer
