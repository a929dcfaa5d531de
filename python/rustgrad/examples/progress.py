# Progress bars for the training loops: tqdm when it is installed, otherwise a small bar with the
# same information (count, percentage, images/s, ETA, loss) that redraws in place on a terminal
# and prints one line per tenth of the work when the output is a file or a pipe.
import sys
import time


def progress_bar(total, desc, unit="img", file=None):
    """A bar over `total` units with `update(n, loss=None)` and `close()`."""
    file = sys.stderr if file is None else file
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return SimpleBar(total, desc, unit, file)
    return _TqdmBar(tqdm(total=total, desc=desc, unit=unit, file=file, dynamic_ncols=True, leave=True))


class _TqdmBar:
    def __init__(self, bar):
        self.bar = bar

    def update(self, n, loss=None):
        if loss is not None:
            self.bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
        self.bar.update(n)

    def close(self):
        self.bar.close()


def _clock(seconds):
    seconds = int(round(seconds))
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes:02d}:{seconds:02d}"


class SimpleBar:
    """The fallback bar. On a TTY it redraws at most ten times a second; elsewhere every redraw
    would become a line of log, so it reports at each 10 % instead."""

    WIDTH = 24

    def __init__(self, total, desc, unit, file):
        self.total, self.desc, self.unit, self.file = max(int(total), 0), desc, unit, file
        self.count, self.loss = 0, None
        self.start = self.last_draw = time.perf_counter()
        self.tty = bool(getattr(file, "isatty", lambda: False)())
        self.next_tenth, self.reported = 1, None
        self.closed = False

    def update(self, n, loss=None):
        self.count += n
        if loss is not None:
            self.loss = loss
        now = time.perf_counter()
        if self.tty:
            if now - self.last_draw >= 0.1 or self.count >= self.total:
                self.last_draw = now
                self.file.write("\r" + self.line(now))
                self.file.flush()
        elif self.total and self.count * 10 >= self.next_tenth * self.total:
            self.next_tenth = self.count * 10 // self.total + 1
            self.reported = self.count
            self.file.write(self.line(now) + "\n")
            self.file.flush()

    def line(self, now=None):
        elapsed = (time.perf_counter() if now is None else now) - self.start
        rate = self.count / elapsed if elapsed > 0 else 0.0
        frac = self.count / self.total if self.total else 1.0
        eta = (self.total - self.count) / rate if rate > 0 else 0.0
        filled = int(self.WIDTH * min(frac, 1.0))
        bar = "#" * filled + " " * (self.WIDTH - filled)
        text = (f"{self.desc}: {100 * frac:3.0f}%|{bar}| {self.count}/{self.total} "
                f"[{_clock(elapsed)}<{_clock(eta)}, {rate:.1f} {self.unit}/s")
        if self.loss is not None:
            text += f", loss={self.loss:.3f}"
        return text + "]"

    def close(self):
        if self.closed:
            return
        self.closed = True
        if self.tty:
            self.file.write("\r" + self.line() + "\n")
        elif self.reported != self.count:
            self.file.write(self.line() + "\n")  # the last stretch had no report of its own
        self.file.flush()
