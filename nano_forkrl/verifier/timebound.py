"""Hard time limit for a verifier call: bounded(fn, args, timeout, default) is fn(*args), or default
(False) past the deadline or when fn raises.

Two mechanisms, picked per call:
  * main thread (and no alarm of the caller's running): SIGALRM via setitimer, which
    interrupts Python code;
  * any other thread (signals are main-thread only): fn runs in a forked child that is killed at the
    deadline. The child comes from os.fork, not multiprocessing.Process: multiprocessing refuses to
    start children from a daemonic process (every multiprocessing.Pool worker is one), and the
    verifier would then answer "not equal" for true pairs. We reap the child ourselves, so the
    daemon rule (no orphans) still holds.
Without fork (Windows) a spawned process is used; in a daemonic process there that is impossible, so
the call raises RuntimeError instead of answering wrongly. Timeouts and errors inside fn give the
default, but for a NotImplementedError that nano_forkrl's own code raised (a function not written
yet, as in the homework's student copy): a missing function is an error, not a verdict. sympy's
NotImplementedError is a verdict ("cannot decide").

When no bound can be set up (the fork or its pipe fails: out of file descriptors, EMFILE; out of
processes, EAGAIN; out of memory) the call gives the default too, but never silently: each kind of
failure logs one warning and is counted; pop_failures() returns the counts since the last call (the
training loop logs them).
"""
import collections
import contextlib
import errno
import logging
import multiprocessing
import os
import pickle
import select
import signal
import threading
import time

_FAILURES, _LOCK = collections.Counter(), threading.Lock()
_log = logging.getLogger(__name__)


def _failed(err):
    """Count (and, the first time for its kind, log) a call that could not be bounded."""
    kind = errno.errorcode.get(getattr(err, "errno", None) or 0, type(err).__name__)
    with _LOCK:
        first = kind not in _FAILURES
        _FAILURES[kind] += 1
    if first:
        _log.warning("verifier: a call could not be time-bounded (%s: %s) and is judged wrong; "
                     "further failures of this kind are counted, not logged (verify.pop_failures)",
                     kind, err)


def pop_failures():
    """{kind: count} of calls that could not be bounded since the last pop_failures()
    (kind: "EMFILE", ...)."""
    with _LOCK:
        counts = dict(_FAILURES)
        for kind in counts:  # zeroed, not removed: each kind is still logged only once per process
            _FAILURES[kind] = 0
    return {kind: n for kind, n in counts.items() if n}


def _unwritten(err):
    """Is err a NotImplementedError raised in nano_forkrl's own code (a blank function),
    not in a library's?"""
    tb = err.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return (isinstance(err, NotImplementedError) and tb is not None
            and tb.tb_frame.f_globals.get("__name__", "").startswith("nano_forkrl."))


def _result(fn, args, default):
    """fn(*args); default if it raises an Exception, except a blank function's
    NotImplementedError (returned)."""
    try:
        return fn(*args)
    except Exception as err:
        return err if _unwritten(err) else default


def _raise_unwritten(result):
    if isinstance(result, NotImplementedError):
        raise result
    return result


class _Timeout(BaseException):  # sympy's own "except Exception" must not swallow it
    @staticmethod
    def handler(signum, frame):
        raise _Timeout


def _with_alarm(fn, args, timeout, default):
    """Main thread: SIGALRM stops fn after timeout seconds (it interrupts Python code, not one long
    C call). The alarm repeats every 50 ms: one raised inside a __del__ or a gc callback is
    swallowed by Python, the next is not."""
    # ValueError outside the main interpreter
    old_handler = signal.signal(signal.SIGALRM, _Timeout.handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, max(timeout, 1e-3), 0.05)  # 0 would mean "no alarm"
        return _raise_unwritten(_result(fn, args, default))
    except _Timeout:
        return default
    finally:
        while True:  # an alarm may still land before the timer is off: retry until it is
            try:
                signal.setitimer(signal.ITIMER_REAL, 0)
                break
            except _Timeout:
                continue
        signal.signal(signal.SIGALRM, old_handler)


def _forked(fn, args, timeout, default):
    """fn(*args) in an os.fork child that writes its pickled result to a pipe;
    killed at the deadline."""
    read_end, write_end = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        # not left open: a failed fork must not use up the descriptors the next call needs
        os.close(read_end)
        os.close(write_end)
        raise
    if pid == 0:  # the child: never return into the caller's code, never run its atexit hooks
        status = 0
        try:
            os.close(read_end)
            result = _result(fn, args, default)
            payload = pickle.dumps(result)
            os.write(write_end, len(payload).to_bytes(8, "little") + payload)
        except BaseException:
            status = 1
        finally:
            os._exit(status)
    os.close(write_end)
    try:
        # a length prefix, not end-of-file, says the answer is complete: children forked at the same
        # time by other threads inherit this pipe's write end and keep it open
        data, deadline = b"", time.monotonic() + timeout
        while ((left := deadline - time.monotonic()) > 0
               and select.select([read_end], [], [], left)[0]):
            chunk = os.read(read_end, 1 << 16)
            if not chunk:  # the child died without an answer
                return default
            data += chunk
            if len(data) >= 8 and len(data) - 8 >= int.from_bytes(data[:8], "little"):
                return _raise_unwritten(pickle.loads(data[8:]))
        return default  # deadline
    finally:
        os.close(read_end)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def _child(conn, fn, args, default):
    conn.send(_result(fn, args, default))


def _spawned(fn, args, timeout, default):
    """No fork on this platform: a spawned process, killed at the deadline."""
    if multiprocessing.current_process().daemon:
        raise RuntimeError("the verifier's time bound needs a child process, which a daemonic "
                           "process (a multiprocessing.Pool worker) cannot start here: call it "
                           "from the main thread")
    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, fn, args, default), daemon=True)
    try:
        proc.start()
    except OSError:
        send.close()
        receive.close()
        raise
    send.close()  # so that a dead child reads as end-of-file at once
    try:
        return _raise_unwritten(receive.recv()) if receive.poll(timeout) else default
    except EOFError:
        return default
    finally:
        proc.kill()
        proc.join()
        receive.close()


def bounded(fn, args, timeout, default=False):
    """fn(*args) if it finishes within timeout seconds, else default. Raises only where no
    bound is possible."""
    main = threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")
    # on the main thread, and the caller has no alarm of its own
    if main and signal.getitimer(signal.ITIMER_REAL)[0] == 0:
        with contextlib.suppress(ValueError):  # signal.signal refuses outside the main interpreter
            return _with_alarm(fn, args, timeout, default)
    try:
        return (_forked if hasattr(os, "fork") else _spawned)(fn, args, timeout, default)
    except OSError as err:  # out of processes or file descriptors: counted, logged, never silent
        _failed(err)
        return default
