"""Per-item deadlines for work that may hang: a SIGALRM interval timer, and a pool of forked workers.

Used by lens.rewards.grade_batch (imported, never run). `guarded(fn, *args, timeout_s, default)` runs
fn in this process under a sub-second SIGALRM timer (main thread only) and returns `default` on any
error or overrun. `run_pool(items, work, ...)` hands (idx, key, payload) items to forked worker
processes in chunks (items of one key together, so a worker can cache per key); each worker runs
`work(chunk, send)`, which must call `send((idx, result))` per item as it finishes it (under its own
`guarded` deadlines: a forked worker is the main thread of its process). A worker that overruns an
item's deadline by a margin (a hang in C code no signal can interrupt) or dies is killed and
replaced: that item's result is `default`, the rest of its chunk is requeued.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from collections import deque
from multiprocessing.connection import wait as mp_wait

# Seconds past a worker's own deadlines for an item before the parent kills it: room for a loaded machine.
HARD_LIMIT_SLACK_S = 5.0
# Items a worker gets at a time; it reports each result back so the parent's deadline is per item.
CHUNK_ITEMS = 16


class Deadline(BaseException):
    """Raised by the interval timer; a BaseException so a library's `except Exception` can't swallow it."""


# --------------------------------------------------------------------------------------------
# In this process
# --------------------------------------------------------------------------------------------
class timer:
    """SIGALRM interval timer (sub-second) raising Deadline; main thread only."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def __enter__(self):
        def handler(signum, frame):
            raise Deadline()

        self.old = signal.signal(signal.SIGALRM, handler)
        signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def __exit__(self, *exc):
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self.old)
        return False


def guarded(fn, *args, timeout_s: float, default):
    """fn(*args) under a deadline; any error or overrun gives `default`. Needs the main thread."""
    try:
        with timer(timeout_s):
            return fn(*args)
    except Deadline:
        return default
    except Exception:  # noqa: BLE001 - the caller asked for `default` on any failure
        return default


# --------------------------------------------------------------------------------------------
# Process pool
# --------------------------------------------------------------------------------------------
def _worker(conn, work) -> None:
    # A forked worker is the main thread of its own process, so the SIGALRM timer works here.
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    try:
        while True:
            chunk = conn.recv()
            if chunk is None:
                return
            work(chunk, conn.send)
    except (EOFError, OSError, KeyboardInterrupt):
        return


class _Slot:
    def __init__(self, ctx, work):
        parent, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(child, work), daemon=True)
        self.proc.start()
        child.close()
        self.conn = parent
        self.pending: deque = deque()  # (idx, key, payload) sent, not yet answered, in order
        self.since = 0.0  # when the oldest pending item started (last answer or dispatch)

    def kill(self) -> None:
        try:
            self.proc.kill()
        except Exception:  # noqa: BLE001 - already gone
            pass
        self.proc.join(timeout=5)
        self.conn.close()

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except (OSError, ValueError):
            pass
        self.proc.join(timeout=2)
        if self.proc.is_alive():
            self.kill()
        else:
            self.conn.close()


def chunks(items: list, n_workers: int) -> deque:
    """Group items by key (so a worker handles each key's items together), then cut into chunks of ~CHUNK_ITEMS."""
    by_key: dict = {}
    for it in items:
        by_key.setdefault(it[1], []).append(it)
    # A key's group is kept whole unless it alone is a large share of the batch.
    max_group = max(CHUNK_ITEMS, -(-len(items) // (4 * n_workers)))
    out: deque = deque()
    cur: list = []
    for group in by_key.values():
        for start in range(0, len(group), max_group):
            piece = group[start: start + max_group]
            if cur and len(cur) + len(piece) > CHUNK_ITEMS:
                out.append(cur)
                cur = []
            cur.extend(piece)
    if cur:
        out.append(cur)
    return out


def run_pool(items: list, work, *, item_limit_s: float, n_workers: int, default, progress=None) -> dict:
    """{idx: result} for (idx, key, payload) items, graded by `work(chunk, send)` in forked workers.

    item_limit_s: the worker's own deadlines for one item (they fire first); the parent kills a
    worker only when an item runs HARD_LIMIT_SLACK_S past them (stuck where no signal reaches it),
    and that item's result is `default`. progress: optional callable given the number of items done.
    """
    ctx = mp.get_context("fork")
    queue = chunks(items, n_workers)
    results: dict = {}
    hard_limit = item_limit_s + HARD_LIMIT_SLACK_S
    slots = [_Slot(ctx, work) for _ in range(min(n_workers, len(queue)))]

    def replace(slot: _Slot) -> None:
        """Kill a stuck or dead worker: its current item gets `default`, the rest of its chunk is requeued."""
        slot.kill()
        stuck = slot.pending.popleft()
        results[stuck[0]] = default
        if progress is not None:
            progress(1)
        if slot.pending:
            queue.appendleft(list(slot.pending))
        slots[slots.index(slot)] = _Slot(ctx, work)

    def dispatch(slot: _Slot) -> None:
        if queue and not slot.pending:
            chunk = queue.popleft()
            slot.pending.extend(chunk)
            slot.since = time.monotonic()
            slot.conn.send(chunk)

    try:
        for s in slots:
            dispatch(s)
        while any(s.pending for s in slots):
            busy = [s for s in slots if s.pending]
            now = time.monotonic()
            wait_s = max(0.0, min(s.since + hard_limit for s in busy) - now)
            ready = mp_wait([s.conn for s in busy], timeout=wait_s)
            for s in busy:
                if s.conn in ready:
                    try:
                        idx, result = s.conn.recv()
                    except (EOFError, OSError):  # worker died (e.g. out of memory): restart it
                        replace(s)
                        continue
                    results[idx] = result
                    if progress is not None:
                        progress(1)
                    s.pending.popleft()
                    s.since = time.monotonic()
                    dispatch(s)
                elif time.monotonic() - s.since > hard_limit:
                    replace(s)
            for s in slots:
                dispatch(s)
    finally:
        for s in slots:
            s.stop()
    return results


def cpu_count() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
