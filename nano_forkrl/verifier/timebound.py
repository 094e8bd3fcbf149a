"""Hard time limit for a verifier call: bounded(fn, args, timeout) is fn(*args), or False past the deadline.

Two mechanisms, picked per call:
  * main thread (and no alarm of the caller's running): SIGALRM via setitimer, which interrupts Python code;
  * any other thread (signals are main-thread only): fn runs in a forked child that is killed at the deadline.
    The child comes from os.fork, not multiprocessing.Process: multiprocessing refuses to start children
    from a daemonic process (every multiprocessing.Pool worker is one), and the verifier would then answer
    "not equal" for true pairs. We reap the child ourselves, so the daemon rule (no orphans) still holds.
Without fork (Windows) a spawned process is used; in a daemonic process there that is impossible, so the call
raises RuntimeError instead of answering wrongly. Timeouts and errors inside fn count as False.
"""
import contextlib
import multiprocessing
import os
import pickle
import select
import signal
import threading
import time


class _Timeout(BaseException):  # not an Exception: sympy's own "except Exception" must not swallow it
    @staticmethod
    def handler(signum, frame):
        raise _Timeout


def _with_alarm(fn, args, timeout):
    """Main thread: SIGALRM stops fn after timeout seconds (it interrupts Python code, not one long C call). The
    alarm repeats every 50 ms: one raised inside a __del__ or a gc callback is swallowed by Python, the next is not."""
    old_handler = signal.signal(signal.SIGALRM, _Timeout.handler)  # ValueError outside the main interpreter
    try:
        signal.setitimer(signal.ITIMER_REAL, max(timeout, 1e-3), 0.05)  # 0 would mean "no alarm"
        return fn(*args)
    except (_Timeout, Exception):
        return False
    finally:
        while True:  # an alarm may still land before the timer is off: retry until it is
            try:
                signal.setitimer(signal.ITIMER_REAL, 0)
                break
            except _Timeout:
                continue
        signal.signal(signal.SIGALRM, old_handler)


def _forked(fn, args, timeout):
    """fn(*args) in an os.fork child that writes its pickled result to a pipe; killed at the deadline."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into the caller's code, never run its atexit hooks
        status = 0
        try:
            os.close(read_end)
            try:
                result = bool(fn(*args))
            except Exception:
                result = False
            payload = pickle.dumps(result)
            os.write(write_end, len(payload).to_bytes(8, "little") + payload)
        except BaseException:
            status = 1
        finally:
            os._exit(status)
    os.close(write_end)
    try:
        # a length prefix, not end-of-file, says the answer is complete: children forked at the same time
        # by other threads inherit this pipe's write end and keep it open
        data, deadline = b"", time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0 and select.select([read_end], [], [], left)[0]:
            chunk = os.read(read_end, 1 << 16)
            if not chunk:  # the child died without an answer
                return False
            data += chunk
            if len(data) >= 8 and len(data) - 8 >= int.from_bytes(data[:8], "little"):
                return pickle.loads(data[8:])
        return False  # deadline
    finally:
        os.close(read_end)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def _child(conn, fn, args):
    try:
        conn.send(fn(*args))
    except Exception:
        conn.send(False)


def _spawned(fn, args, timeout):
    """No fork on this platform: a spawned process, killed at the deadline."""
    if multiprocessing.current_process().daemon:
        raise RuntimeError("the verifier's time bound needs a child process, which a daemonic process (a "
                           "multiprocessing.Pool worker) cannot start here: call it from the main thread")
    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, fn, args), daemon=True)
    proc.start()
    send.close()  # so that a dead child reads as end-of-file at once
    try:
        return receive.poll(timeout) and receive.recv()
    except EOFError:
        return False
    finally:
        proc.kill()
        proc.join()
        receive.close()


def bounded(fn, args, timeout):
    """fn(*args) if it finishes within timeout seconds, else False. Raises only where no bound is possible."""
    main = threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")
    if main and signal.getitimer(signal.ITIMER_REAL)[0] == 0:  # and the caller has no alarm of its own
        with contextlib.suppress(ValueError):  # signal.signal refuses outside the main interpreter
            return _with_alarm(fn, args, timeout)
    if hasattr(os, "fork"):
        try:
            return _forked(fn, args, timeout)
        except OSError:  # no more processes or file descriptors: "not equal", as any other failure
            return False
    return _spawned(fn, args, timeout)
