"""Wall-clock and memory probes for training runs."""

from __future__ import annotations

import resource
import sys
import time

from lightning.pytorch.callbacks import Callback


class EpochTimer(Callback):
    """Record the wall-clock seconds of every training epoch.

    Lightning runs an epoch's validation loop before ``on_train_epoch_end``, so validation time
    is included, as it is in the epoch a user waits for.
    """

    def __init__(self):
        self.seconds: list[float] = []
        self._start = 0.0

    def on_train_epoch_start(self, trainer, pl_module):
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        self.seconds.append(time.perf_counter() - self._start)


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / 1024**2 if sys.platform == "darwin" else peak / 1024


class PeakMemory:
    """Peak resident memory of this process inside a ``with`` block, sampled by a thread.

    ``ru_maxrss`` only ever grows over a process's life, so runs inside one process cannot be told
    apart by it; sampling the current RSS gives each block its own peak above its starting point.
    """

    def __init__(self, interval_s: float = 0.05):
        self.interval_s = interval_s
        self.start_mib = 0.0
        self.peak_mib = 0.0

    @staticmethod
    def _current_mib() -> float:
        import psutil

        return psutil.Process().memory_info().rss / 1024**2

    def _sample(self):
        while not self._stop.wait(self.interval_s):
            self.peak_mib = max(self.peak_mib, self._current_mib())

    def __enter__(self) -> PeakMemory:
        import threading

        self.start_mib = self.peak_mib = self._current_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak_mib = max(self.peak_mib, self._current_mib())

    @property
    def increase_mib(self) -> float:
        """Peak above the RSS at the start of the block."""
        return self.peak_mib - self.start_mib
