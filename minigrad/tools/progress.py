"""A progress bar for long training loops: step, loss and time left.

    for step in (bar := progress(range(steps), desc="training")):
        ...
        bar.set_postfix(loss=loss.item())

Uses tqdm when it is installed (`pip install -e ".[dev]"` brings it); without it, a
plain line every tenth of the run: "training  300/600  loss 1.234  31 s, ~31 s left".
disable=True (the lessons' --quick runs) shows nothing, so test logs stay short.
"""
import sys
import time

try:
    from tqdm import tqdm
except ImportError:          # tqdm is optional: the plain fallback below says the same things
    tqdm = None


class PlainProgress:
    """tqdm's small interface (iteration, set_postfix, close) as a line printed every tenth."""

    def __init__(self, iterable, total=None, desc="", disable=False, file=None, lines=10):
        self.iterable, self.desc, self.disable = iterable, desc, disable
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        self.file = file if file is not None else sys.stderr
        self.every = max(1, (self.total or lines) // lines)
        self.postfix = {}

    def set_postfix(self, **values):
        self.postfix = values

    def _line(self, done, started):
        elapsed = time.perf_counter() - started
        values = "  ".join(f"{name} {value:.4g}" if isinstance(value, float) else f"{name} {value}"
                           for name, value in self.postfix.items())
        if self.total:
            left = elapsed / done * (self.total - done)
            return f"{self.desc}  {done}/{self.total}  {values}  {elapsed:.0f} s, ~{left:.0f} s left"
        return f"{self.desc}  {done}  {values}  {elapsed:.0f} s"

    def __iter__(self):
        started = time.perf_counter()
        done = 0
        for item in self.iterable:
            yield item                       # the loop body runs here, and may call set_postfix
            done += 1
            if not self.disable and (done % self.every == 0 or done == self.total):
                print(self._line(done, started), file=self.file, flush=True)

    def close(self):
        pass


def progress(iterable, total=None, desc="", disable=False):
    """Wrap a loop in a progress bar showing steps done, the values given to
    set_postfix (the loss) and the estimated time left; tqdm's if installed."""
    if tqdm is not None:
        return tqdm(iterable, total=total, desc=desc, disable=disable, mininterval=0.5, dynamic_ncols=True)
    return PlainProgress(iterable, total=total, desc=desc, disable=disable)
