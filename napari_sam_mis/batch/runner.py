"""A batch on Dask distributed: each case one task, on a LocalCluster of worker processes on this
machine by default, or on the cluster whose scheduler address is given. Finished cases are
skipped; a failed case is reported and the others go on; a task whose worker dies is run again
by the scheduler on another worker. Progress goes to ``say``; the summary is returned."""
from __future__ import annotations

import os
import time

from napari_sam_mis.batch.work import Settings, is_done, run_case
from napari_sam_mis.errors import SamMisError

RETRIES = 2  # a case whose worker died is run again this many times


def run_batch(cases, settings: Settings, scheduler: str | None = None, workers: int | None = None,
              say=print) -> dict:
    """Run ``cases`` (manifest.Case) with ``settings``; returns the summary (see ``summary``)."""
    from distributed import Client, LocalCluster, as_completed

    t0 = time.perf_counter()
    todo = [c for c in cases if not is_done(c, settings)]
    skipped = len(cases) - len(todo)
    if skipped:
        say(f"{skipped} of {len(cases)} cases are done already (their records match): skipped")
    results = []
    if todo:
        cluster = None
        if scheduler is None:
            n = workers or os.cpu_count() or 1
            settings.torch_threads = settings.torch_threads or max(1, (os.cpu_count() or 1) // n)
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                                   silence_logs=40)
        try:
            client = Client(cluster if cluster is not None else scheduler, timeout="30s")
        except (OSError, TimeoutError) as exc:
            if cluster is not None:
                cluster.close()
            raise SamMisError(f"cannot reach the Dask scheduler {scheduler}: {exc}") from exc
        try:
            say(f"{len(todo)} cases on {len(client.scheduler_info()['workers'])} workers "
                f"({'local cluster' if cluster is not None else scheduler})")
            futures = [client.submit(run_case, case, settings, key=f"case-{i}-{case.name}", retries=RETRIES,
                                     pure=False) for i, case in enumerate(todo)]
            slices = 0
            for future in as_completed(futures):
                result = future.result()
                results.append(result)
                slices += result["slices"]
                say(_progress(result, len(results), len(todo), slices, time.perf_counter() - t0))
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    return summary(cases, results, skipped, time.perf_counter() - t0)


def _progress(result: dict, done: int, total: int, slices: int, elapsed: float) -> str:
    rate = slices / elapsed if elapsed > 0 else 0.0
    eta = elapsed / done * (total - done)
    what = "done" if result["status"] == "done" else f"FAILED: {result.get('reason')}"
    return (f"[{done}/{total}] {result['case']}: {what} ({result['slices']} slices, {result['seconds']:.1f} s, "
            f"{result['worker']}); {slices} slices, {rate:.2f} slices/s, ETA {eta:.0f} s")


def summary(cases, results: list[dict], skipped: int, seconds: float) -> dict:
    slices = sum(r["slices"] for r in results)
    return {"cases": len(cases), "done": sum(r["status"] == "done" for r in results),
            "failed": sum(r["status"] == "failed" for r in results), "skipped": skipped,
            "workers": sorted({r["worker"] for r in results}), "slices": slices, "seconds": round(seconds, 3),
            "slices_per_s": round(slices / seconds, 3) if seconds > 0 else 0.0,
            "failures": {r["case"]: r.get("reason") for r in results if r["status"] == "failed"}}
