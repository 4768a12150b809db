"""Timing and memory measurements for the speed benchmark (CUDA synchronised where it runs)."""
from __future__ import annotations

import threading
import time


class PeakRSS:
    """How far resident memory rises above its level at entry (MiB), sampled every 2 ms."""

    def __enter__(self):
        import psutil

        self._proc = psutil.Process()
        self.base = self._proc.memory_info().rss
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(0.002)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)

    @property
    def mib(self) -> float:
        return (self.peak - self.base) / 2**20


def timed(fn, device):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t


def decode_while_encoding(encode, decode, n: int, device) -> list[float]:
    """Decode latencies (ms) of ``n`` prompts 50 ms apart while a background thread encodes."""
    stop = threading.Event()

    def background():
        while not stop.is_set():
            encode()

    worker = threading.Thread(target=background, daemon=True)
    worker.start()
    time.sleep(0.2)
    out = []
    for _ in range(n):
        out.append(1000 * timed(decode, device))
        time.sleep(0.05)  # clicks come apart: let the encoder get going again
    stop.set()
    worker.join()
    return out
