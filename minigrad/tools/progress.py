"""A progress bar for long training loops: step, loss and time left.

    bar = progress(range(steps), desc="training")
    for step in bar:
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
    """tqdm's small interface (iteration or update(n), set_postfix, close) as a line printed every tenth."""

    def __init__(self, iterable=None, total=None, desc="", disable=False, file=None, lines=10):
        self.iterable, self.desc, self.disable = iterable, desc, disable
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        self.file = file if file is not None else sys.stderr
        self.every = max(1, (self.total or lines) // lines)
        self.postfix, self.done, self.started = {}, 0, time.perf_counter()

    def set_postfix(self, **values):
        self.postfix = values

    def _line(self):
        elapsed = time.perf_counter() - self.started
        values = "  ".join(f"{name} {value:.4g}" if isinstance(value, float) else f"{name} {value}"
                           for name, value in self.postfix.items())
        if self.total:
            left = elapsed / self.done * (self.total - self.done)
            return f"{self.desc}  {self.done}/{self.total}  {values}  {elapsed:.0f} s, ~{left:.0f} s left"
        return f"{self.desc}  {self.done}  {values}  {elapsed:.0f} s"

    def update(self, n=1):
        """Count n more steps done (for loops that are not a single iterable)."""
        before, self.done = self.done, self.done + n
        crossed = self.done // self.every > before // self.every or self.done == self.total
        if not self.disable and crossed:
            print(self._line(), file=self.file, flush=True)

    def __iter__(self):
        self.started = time.perf_counter()
        for item in self.iterable:
            yield item                       # the loop body runs here, and may call set_postfix
            self.update()

    def close(self):
        pass


def progress(iterable=None, total=None, desc="", disable=False):
    """Wrap a loop in a progress bar showing steps done, the values given to
    set_postfix (the loss) and the estimated time left; tqdm's if installed.
    Without an iterable, call bar.update() once per step (total= says how many)."""
    if tqdm is not None:
        return tqdm(iterable, total=total, desc=desc, disable=disable, mininterval=0.5, dynamic_ncols=True)
    return PlainProgress(iterable, total=total, desc=desc, disable=disable)
