"""Timing helpers shared by the benchmark scripts."""

import time

import numpy as np


def interleaved_medians(fns, repeats):
    """Median seconds of each function in `fns`, run alternately so that
    the machine's drifts hit them alike; each runs once untimed first
    (tracing, compiling, caches)."""
    for fn in fns:
        fn()
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, fn_times in zip(fns, times):
            start = time.perf_counter()
            fn()
            fn_times.append(time.perf_counter() - start)
    return [float(np.median(fn_times)) for fn_times in times]
