"""Threads for the CPU kernels: one array op cut into row blocks, the blocks run on a pool.

numpy releases the GIL inside its loops, so Python threads that each run the same
numpy code on a different block of rows do use different cores. A kernel written
as `for_blocks(rows, row_size, work)`, with work(lo, hi) computing rows lo:hi and
writing them into an output made beforehand, gets both:

    cache-sized blocks   the several passes of a fused formula (GELU is ~15 numpy
                         calls) all run on ~1 MB that stays in L2, instead of each
                         pass streaming the whole array through memory (2.3x on GELU
                         at one thread);
    all cores            blocks are handed to `get_num_threads()` threads.

Why this and not numba or numexpr (measured on the 2-core development machine,
2M float32 elements): numba's parallel loops did not beat blocked numpy (GELU
13.5 ms vs 5.3 ms, layer norm 2.7 ms vs 1.9 ms at one thread; and seconds of JIT
compilation per kernel on a fresh machine); numexpr has no erf and its tanh-GELU
took 29 ms. A pool over row blocks needs no dependency at all.

The thread count, `set_num_threads(n)` (env MINIGRAD_NUM_THREADS, default: the cores
this process may run on), governs the matrix products too: BLAS is held to one thread
(through threadpoolctl, when installed) and linalg.matmul shares products out over
this same pool, so that no idle BLAS worker spins on a core the kernels need.
"""
import os
import threading
from concurrent.futures import ThreadPoolExecutor

BLOCK_BYTES = 1 << 20            # per block of a kernel's input: its passes stay in L2
MIN_PARALLEL_ELEMENTS = 1 << 15  # below this, handing blocks to threads costs more than it saves

_num_threads = None
_pool = None
_pool_lock = threading.Lock()
_in_worker = threading.local()


def _cores_available():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:               # not on Linux
        return os.cpu_count() or 1


def set_num_threads(n):
    """Use n threads for the CPU kernels, matrix products included (as torch.set_num_threads):
    BLAS itself is held to one thread and linalg.matmul cuts large products into n parts."""
    global _num_threads, _pool
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: expected a positive integer, got {n!r}")
    with _pool_lock:
        if _pool is not None and n != _num_threads:
            _pool.shutdown(wait=True)
            _pool = None
        _num_threads = n
    _limit_blas(1)          # linalg.matmul shares the products out over these threads instead


def get_num_threads():
    """The number of threads the CPU kernels use (MINIGRAD_NUM_THREADS, or the cores)."""
    if _num_threads is None:
        raw = os.environ.get("MINIGRAD_NUM_THREADS", "").strip()
        if raw:
            try:
                n = int(raw)
            except ValueError:
                n = 0
            if n < 1:
                raise ValueError(f"MINIGRAD_NUM_THREADS must be a positive integer, got {raw!r}")
        else:
            n = _cores_available()
        set_num_threads(n)
    return _num_threads


_blas = None                     # threadpoolctl's handle on the BLAS libraries, or False


def _blas_controller():
    global _blas
    if _blas is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:           # BLAS keeps its own setting (OMP/OPENBLAS_NUM_THREADS)
            _blas = False
        else:
            _blas = ThreadpoolController().select(user_api="blas")
    return _blas


def _limit_blas(n):
    global _blas
    _blas = None                      # look again: a BLAS may have been loaded since (scipy's)
    blas = _blas_controller()
    if blas:
        for library in blas.lib_controllers:
            library.set_num_threads(n)


def shares_out_products():
    """True when BLAS is held to one thread here, so the matrix products are ours to share
    out (linalg.matmul); without threadpoolctl BLAS keeps its own threads and does it."""
    get_num_threads()
    return bool(_blas_controller())


def _get_pool():
    global _pool
    with _pool_lock:
        if _pool is None:
            # the calling thread works too: n threads are the pool's n - 1 and it
            _pool = ThreadPoolExecutor(max(1, _num_threads - 1), thread_name_prefix="minigrad-kernel",
                                       initializer=_mark_worker)
        return _pool


def _mark_worker():
    _in_worker.active = True


def blocks(rows, row_bytes, parts=1, block_bytes=BLOCK_BYTES):
    """[(lo, hi), ...] covering range(rows): each about block_bytes, and at least `parts`
    blocks when there are that many rows (so every thread gets work)."""
    per_block = max(1, block_bytes // max(1, row_bytes))
    per_block = min(per_block, max(1, -(-rows // parts)))
    return [(lo, min(rows, lo + per_block)) for lo in range(0, rows, per_block)]


def for_blocks(rows, row_bytes, work, row_elements=None):
    """Call work(lo, hi) for row blocks covering range(rows), on the pool when the job
    is big enough and more than one thread is set; work must write disjoint outputs.
    row_elements (default row_bytes / 4) decides "big enough"."""
    threads = get_num_threads()
    elements = rows * (row_elements if row_elements is not None else row_bytes // 4)
    spans = blocks(rows, row_bytes, threads)
    if threads == 1 or len(spans) == 1 or elements < MIN_PARALLEL_ELEMENTS or in_worker():
        for lo, hi in spans:
            work(lo, hi)
        return
    _run_on_pool(work, spans)


def in_worker():
    """True inside a kernel thread (work started there runs there, never on the pool again)."""
    return getattr(_in_worker, "active", False)


def run_parts(size, parts, work):
    """work(lo, hi) for `parts` near-equal spans of range(size), on the kernel threads."""
    parts = max(1, min(parts, size))
    bounds = [size * i // parts for i in range(parts + 1)]
    _run_on_pool(work, list(zip(bounds[:-1], bounds[1:])))


def run_tasks(tasks):
    """Call each of `tasks` (functions of no arguments) once, side by side on the kernel
    threads; return when all are done."""
    if get_num_threads() == 1 or len(tasks) == 1 or in_worker():
        for task in tasks:
            task()
        return
    _run_on_pool(lambda task: task(), [(task,) for task in tasks])


def _run_on_pool(work, spans):
    """The spans, taken in turn by the pool's threads and the calling thread (which would
    otherwise only wait): get_num_threads() threads in all."""
    pending = iter(spans)
    lock = threading.Lock()

    def drain():
        while True:
            with lock:
                span = next(pending, None)
            if span is None:
                return
            work(*span)
    helpers = [_get_pool().submit(drain) for _ in range(min(len(spans), _num_threads) - 1)]
    was_worker = in_worker()
    _in_worker.active = True          # work started from here runs here, not on the pool again
    try:
        drain()
    finally:
        _in_worker.active = was_worker
        for helper in helpers:
            helper.result()           # re-raises a block's exception here


ELEMENT_BLOCK = 8192                  # elements per block of an elementwise kernel


def for_flat_blocks(fn, arrays):
    """fn(*blocks) over the same flat blocks of equally shaped numpy arrays (ELEMENT_BLOCK
    elements at a time, about BLOCK_BYTES of all the arrays together per block), on the
    kernel threads. fn may write into its blocks: an array it changes must be C-contiguous
    (else its flat form is a copy)."""
    flats = [a.reshape(-1) for a in arrays]

    def work(lo, hi):
        span = slice(lo * ELEMENT_BLOCK, hi * ELEMENT_BLOCK)
        fn(*(flat[span] for flat in flats))
    element_bytes = sum(a.dtype.itemsize for a in arrays)
    for_blocks(-(-flats[0].size // ELEMENT_BLOCK), ELEMENT_BLOCK * element_bytes, work,
               row_elements=ELEMENT_BLOCK)


def map_elementwise(fn, *arrays, dtypes=None):
    """fn(*blocks) over the same flat blocks of equally shaped numpy arrays, on the kernel
    threads. fn returns one block-shaped result, or a tuple of them when `dtypes` (the
    results' dtypes; default: one result in the first array's dtype) names several."""
    import numpy
    several = dtypes is not None and len(dtypes) > 1
    outs = tuple(numpy.empty(arrays[0].shape, dtype=dtype)              # each owns its memory
                 for dtype in (dtypes or (arrays[0].dtype,)))

    def write(*blocks):
        got = fn(*blocks[:len(arrays)])
        for out, part in zip(blocks[len(arrays):], got if several else (got,)):
            out[...] = part
    for_flat_blocks(write, arrays + outs)
    return outs if several else outs[0]
