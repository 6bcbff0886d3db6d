"""Answer extraction and Math-Verify grading: 1.0 if a completion's final answer equals the gold one.

`grade_batch(completions, golds)` is the one entry point (the RL reward and the evaluator call it):

- the prediction is the content of the completion's last top-level ``\\boxed{}`` (or ``\\fbox{}``);
  without one, Math-Verify's own extraction runs on the completion's tail; when the gold holds
  several answers ("-2, 1") and the last box alone does not match, all top-level boxes together
  are tried (MATH's own solutions box each answer separately);
- the gold is parsed first and passed first to ``math_verify.verify`` (it is not symmetric), bare
  gold answers are wrapped in ``$...$`` (a bare ``2\\sqrt3`` would parse as ``2``), and each distinct
  gold is parsed once per call (once per worker process for pooled batches);
- percentages are normalised here, not by Math-Verify: with antlr4 4.11 (which lm-eval[math] pins)
  latex2sympy fails on ``\\%`` and ``\\boxed{20\\%}`` vs gold ``20`` grades 0. A trailing ``%`` /
  ``\\%`` / "percent" is stripped from either side and a side that had one may be read as x or x/100,
  which is what Math-Verify does on antlr 4.13.2 (``20`` = ``20\\%``, ``0.28`` = ``28\\%``);
- it never raises and never hangs: every item has a deadline of ``timeout_s``. Small batches in
  the main thread run in-process under a SIGALRM interval timer; large batches, and any call from a
  non-main thread, go to a pool of forked worker processes (Math-Verify's own timeouts need the
  main thread), and a worker that overruns a deadline by a margin (a hang in C code no signal can
  interrupt) is killed and replaced, its current item graded 0.0.

Benchmark: ``python benchmarks/bench_grading.py``; gold self-check: ``python benchmarks/grade_gold.py``.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import re
import signal
import threading
import time
from collections import deque
from multiprocessing.connection import wait as mp_wait

DEFAULT_TIMEOUT_S = 5.0
# Batches at least this large use the process pool (when more than one core is available); below,
# the fork and IPC overhead (a few ms) is larger than what a second core saves.
POOL_MIN_ITEMS = 64
# A final answer longer than this is not a real answer; parsing it would only spend time.
MAX_ANSWER_CHARS = 1000
# Without a \boxed{}, only the completion's tail is searched: the answer is stated at the end, and
# Math-Verify's regexes over 100k characters cost seconds.
FALLBACK_TAIL_CHARS = 1000
# Seconds past a worker's own 2 x timeout_s before the parent kills it: room for a loaded machine.
HARD_LIMIT_SLACK_S = 5.0
# Answers nested deeper than this ((((1)))), \\frac{\\frac{...}}) are graded 0.0 unparsed: the LaTeX
# parser's time grows steeply with depth (depth 16 of \\frac runs past 5 s), and no MATH gold answer
# is nested deeper than 3.
MAX_NESTING = 8
# Numbers sympy would try to expand (power towers, exponents or factorials of 100,000 and more):
# verify() runs to the deadline on them, so they are 0.0 at once.
_EXPLOSIVE_RE = re.compile(
    r"\^\s*\{?\s*\(?\s*[\d.]+\s*\)?\s*\^"  # 9^{9^{...}}: a numeric exponent raised again
    r"|\^\s*\{?\s*\d{6,}"  # 10^{100000000}
    r"|\d{6,}\s*\)?\s*!"  # 100000000!
    r"|\^\s*\{?\s*\d+\s*\}?\s*\)\s*!"  # (10^{8})!
)
# Items a worker gets at a time; it reports each result back so the parent's deadline is per item.
CHUNK_ITEMS = 16

_BOX_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")
_PERCENT_RE = re.compile(
    r"\s*(?:\\?%|\\text\s*\{\s*\\?%\s*\}|\\mbox\s*\{\s*\\?%\s*\}|\\?\s*\\text\s*\{\s*percent\s*\}|percent)\s*$"
)

logging.getLogger("math_verify").setLevel(logging.ERROR)  # timeouts are expected and graded 0.0


class _Deadline(BaseException):
    """Raised by the interval timer; a BaseException so Math-Verify's `except Exception` can't swallow it."""


# --------------------------------------------------------------------------------------------
# Extraction
# --------------------------------------------------------------------------------------------
def boxed_contents(text: str) -> list[str]:
    """Contents of every top-level ``\\boxed{...}``/``\\fbox{...}`` in order (nested braces matched).

    Linear in len(text). Scanning stops at an unclosed box (the complete ones before it count).
    """
    found: list[str] = []
    pos = 0
    n = len(text)
    while True:
        m = _BOX_RE.search(text, pos)
        if m is None:
            return found
        depth = 1
        i = m.end()
        while i < n and depth:
            c = text[i]
            if c == "\\":
                i += 2  # an escaped brace \{ does not open a group
                continue
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
            i += 1
        if depth:
            return found
        found.append(text[m.end(): i - 1])
        pos = i


def last_boxed(text: str) -> str | None:
    """Content of the last top-level ``\\boxed{...}``/``\\fbox{...}``, else None."""
    boxes = boxed_contents(text)
    return boxes[-1] if boxes else None


def split_percent(answer: str) -> tuple[str, bool]:
    """``"20\\%"`` -> ``("20", True)``; strips one trailing percent marker (and `$`, spaces, a full stop)."""
    s = answer.strip().strip("$").strip().rstrip(".").strip()
    m = _PERCENT_RE.search(s)
    if m is None or m.start() == 0:
        return s, False
    return s[: m.start()].rstrip(), True


def _prediction_text(completion: str, boxed: str | None = None) -> tuple[str | None, bool]:
    """The string handed to math_verify.parse for a completion, and whether it carried a percent."""
    if boxed is None:
        boxed = last_boxed(completion)
    if boxed is not None:
        content, pct = split_percent(boxed)
        if not content or len(content) > MAX_ANSWER_CHARS or _pathological(content):
            return None, False
        return "\\boxed{" + content + "}", pct
    tail = completion[-FALLBACK_TAIL_CHARS:]
    if not tail.strip() or _pathological(tail):
        return None, False
    pct = "%" in tail or "percent" in tail
    if pct:
        tail = re.sub(r"\\?%|\bpercent\b", "", tail)
    return tail, pct


def _nesting(text: str) -> int:
    depth = deepest = 0
    for c in text:
        if c in "({[":
            depth += 1
            deepest = max(deepest, depth)
        elif c in ")}]":
            depth = max(0, depth - 1)
    return deepest


def _pathological(answer: str) -> bool:
    """Answers no grader should spend its deadline on (see MAX_NESTING and _EXPLOSIVE_RE)."""
    return _nesting(answer) > MAX_NESTING or _EXPLOSIVE_RE.search(answer) is not None


def _gold_text(gold: str) -> tuple[str, bool]:
    s = str(gold)
    if "\\boxed" in s or "\\fbox" in s:
        boxed = last_boxed(s)
        s = boxed if boxed is not None else s
    content, pct = split_percent(s)
    return "$" + content + "$", pct


# --------------------------------------------------------------------------------------------
# One item
# --------------------------------------------------------------------------------------------
def _with_percent(parsed: list, pct: bool) -> list:
    """Add x/100 for every numeric parse of a side that carried a percent sign (x itself stays)."""
    if not pct:
        return parsed
    import sympy

    extra = []
    for p in parsed:
        if isinstance(p, sympy.Basic) and getattr(p, "is_number", False):
            try:
                extra.append(p / 100)
            except Exception:  # noqa: BLE001 - a value sympy cannot divide just gets no x/100 reading
                pass
    return parsed + extra


def _parse_gold(gold: str) -> list:
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse

    text, pct = _gold_text(gold)
    parsed = parse(text, [LatexExtractionConfig(), ExprExtractionConfig()], parsing_timeout=None)
    return _with_percent(parsed, pct)


def _grade_parsed(gold_parsed: list, completion: str) -> float:
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    if not gold_parsed or not isinstance(completion, str):
        return 0.0
    text, pct = _prediction_text(completion)
    if text is None:
        return 0.0
    pred = parse(text, [LatexExtractionConfig(), ExprExtractionConfig()], parsing_timeout=None)
    if pred and verify(gold_parsed, _with_percent(pred, pct), timeout_seconds=None):
        return 1.0
    if _is_multi_answer(gold_parsed):
        # A gold with several answers ("-2, 1") is often written with one box per answer, as MATH's
        # own solutions do; then the boxes together are the answer (the gold is a set, order-free).
        boxes = boxed_contents(completion)
        if len(boxes) > 1:
            text, pct = _prediction_text(completion, ", ".join(boxes))
            if text is not None:
                pred = parse(text, [LatexExtractionConfig(), ExprExtractionConfig()], parsing_timeout=None)
                if pred and verify(gold_parsed, _with_percent(pred, pct), timeout_seconds=None):
                    return 1.0
    return 0.0


def _is_multi_answer(gold_parsed: list) -> bool:
    import sympy

    return bool(gold_parsed) and isinstance(gold_parsed[0], (sympy.FiniteSet, sympy.Tuple)) \
        and len(gold_parsed[0].args) > 1


class _timer:
    """SIGALRM interval timer (sub-second) raising _Deadline; main thread only."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def __enter__(self):
        def handler(signum, frame):
            raise _Deadline()

        self.old = signal.signal(signal.SIGALRM, handler)
        signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def __exit__(self, *exc):
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self.old)
        return False


def _guarded(fn, *args, timeout_s: float, default):
    """fn(*args) under a deadline; any error or overrun gives `default`. Needs the main thread."""
    try:
        with _timer(timeout_s):
            return fn(*args)
    except _Deadline:
        return default
    except Exception:  # noqa: BLE001 - grading must never raise: a broken parse is a wrong answer
        return default


def _grade_items(items, timeout_s: float, gold_cache: dict, send=None) -> list[tuple[int, float]]:
    """Grade (idx, gold, completion) triples in this process under per-item deadlines."""
    out = []
    for idx, gold, completion in items:
        if gold not in gold_cache:
            gold_cache[gold] = _guarded(_parse_gold, gold, timeout_s=timeout_s, default=[])
        score = _guarded(_grade_parsed, gold_cache[gold], completion, timeout_s=timeout_s, default=0.0)
        if send is not None:
            send((idx, score))
        out.append((idx, score))
    return out


# --------------------------------------------------------------------------------------------
# Process pool
# --------------------------------------------------------------------------------------------
def _worker(conn, timeout_s: float) -> None:
    # A forked worker is the main thread of its own process, so the SIGALRM timer works here.
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    gold_cache: dict = {}
    try:
        while True:
            chunk = conn.recv()
            if chunk is None:
                return
            _grade_items(chunk, timeout_s, gold_cache, send=conn.send)
    except (EOFError, OSError, KeyboardInterrupt):
        return


class _Slot:
    def __init__(self, ctx, timeout_s: float):
        parent, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(child, timeout_s), daemon=True)
        self.proc.start()
        child.close()
        self.conn = parent
        self.pending: deque = deque()  # (idx, gold, completion) sent, not yet answered, in order
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


def _chunks(items: list, n_workers: int) -> deque:
    """Group items by gold (so a worker parses each gold once), then cut into chunks of ~CHUNK_ITEMS."""
    by_gold: dict = {}
    for it in items:
        by_gold.setdefault(it[1], []).append(it)
    # A gold group is kept whole unless it alone is a large share of the batch.
    max_group = max(CHUNK_ITEMS, -(-len(items) // (4 * n_workers)))
    chunks: deque = deque()
    cur: list = []
    for group in by_gold.values():
        for start in range(0, len(group), max_group):
            piece = group[start: start + max_group]
            if cur and len(cur) + len(piece) > CHUNK_ITEMS:
                chunks.append(cur)
                cur = []
            cur.extend(piece)
    if cur:
        chunks.append(cur)
    return chunks


_WARM = False


def _warm_up() -> None:
    """Build Math-Verify's lazily created LaTeX parser once, before forking, so every worker inherits
    it instead of paying ~1 s on its first item (which a short deadline would grade 0.0)."""
    global _WARM
    if not _WARM:
        try:
            _grade_parsed(_parse_gold("\\frac{1}{2}"), "\\boxed{0.5}")
        except Exception:  # noqa: BLE001 - warm-up only
            pass
        _WARM = True


def _grade_pool(items: list, timeout_s: float, n_workers: int, progress=None) -> dict[int, float]:
    ctx = mp.get_context("fork")
    _warm_up()
    chunks = _chunks(items, n_workers)
    results: dict[int, float] = {}
    # The worker's own timer fires at timeout_s per parse/verify step; the parent steps in only if a
    # worker is stuck where no signal reaches it (gold parse + grade, plus slack for a loaded machine).
    hard_limit = 2 * timeout_s + HARD_LIMIT_SLACK_S
    slots = [_Slot(ctx, timeout_s) for _ in range(min(n_workers, len(chunks)))]
    try:
        def dispatch(slot: _Slot) -> None:
            if chunks and not slot.pending:
                chunk = chunks.popleft()
                slot.pending.extend(chunk)
                slot.since = time.monotonic()
                slot.conn.send(chunk)

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
                        idx, score = s.conn.recv()
                    except (EOFError, OSError):  # worker died (e.g. out of memory): restart it
                        _replace(s, slots, ctx, timeout_s, results, chunks, progress)
                        continue
                    results[idx] = score
                    if progress is not None:
                        progress(1)
                    s.pending.popleft()
                    s.since = time.monotonic()
                    dispatch(s)
                elif time.monotonic() - s.since > hard_limit:
                    _replace(s, slots, ctx, timeout_s, results, chunks, progress)
            for s in slots:
                dispatch(s)
    finally:
        for s in slots:
            s.stop()
    return results


def _replace(slot: _Slot, slots: list, ctx, timeout_s: float, results: dict, chunks: deque, progress) -> None:
    """Kill a stuck or dead worker: its current item gets 0.0, the rest of its chunk is requeued."""
    slot.kill()
    stuck = slot.pending.popleft()
    results[stuck[0]] = 0.0
    if progress is not None:
        progress(1)
    if slot.pending:
        chunks.appendleft(list(slot.pending))
    fresh = _Slot(ctx, timeout_s)
    slots[slots.index(slot)] = fresh


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# --------------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------------
def grade_batch(
    completions: list[str],
    golds: list[str],
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    workers: int | None = None,
    progress=None,
) -> list[float]:
    """1.0/0.0 per (completion, gold) pair: does the completion's final answer equal the gold answer?

    Never raises for any completion (non-strings included) and never runs much past `timeout_s` per
    item. `workers`: processes for a pooled batch (default: all cores; 1 forces in-process grading
    in the main thread). `progress`: optional callable given the number of items just graded.
    """
    if len(completions) != len(golds):
        raise ValueError(f"grade_batch: {len(completions)} completions but {len(golds)} golds")
    n = len(completions)
    if n == 0:
        return []
    items = [(i, str(g), c if isinstance(c, str) else "") for i, (c, g) in enumerate(zip(completions, golds))]
    n_workers = _cpu_count() if workers is None else max(1, workers)
    main_thread = threading.current_thread() is threading.main_thread()
    use_pool = not main_thread or (n >= POOL_MIN_ITEMS and n_workers > 1)
    if use_pool and mp.current_process().daemon:
        use_pool = False  # a daemonic process may not have children
    if not use_pool:
        if main_thread:
            scored = _grade_items(items, timeout_s, {})
            if progress is not None:
                progress(n)
            return [s for _, s in sorted(scored)]
        # Neither signals nor children available (a thread inside a daemonic worker): no deadline
        # can be enforced, so grade only what cannot run long (short boxed answers).
        return [_grade_unguarded(g, c) for _, g, c in items]
    results = _grade_pool(items, timeout_s, max(1, min(n_workers, n)), progress)
    return [results.get(i, 0.0) for i in range(n)]


def _grade_unguarded(gold: str, completion: str) -> float:
    text, _ = _prediction_text(completion)
    if text is None or len(text) > 200 or "^" in text or "!" in text:
        return 0.0
    try:
        return _grade_parsed(_parse_gold(gold), completion)
    except Exception:  # noqa: BLE001
        return 0.0
