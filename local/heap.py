"""The garbage collector of the local stack's long-running processes, tuned for a burst.

A process of the local stack (``python -m local.stack``, each Lambda worker) builds most of its
objects while it starts: moto's backends and its Step Functions programs, the handlers' modules,
botocore's service models, pydantic's schemas (about 550,000 objects in the stack's process).
CPython's collector walks all of them at every full collection, and with its default thresholds
(700 allocations) it collects the young generation every few requests. Under the 50-payer burst
(issue 13, ``make bench``) that was 0.48 s of the stack's time in about 300 collections, one of
them a single 0.3 s pause of every thread of the process; the workers likewise.

``settle()`` is called once start-up is over: what exists then is moved out of the collector's
reach (``gc.freeze``: it is the process's for its lifetime; the few start-up cycles that later
become garbage are kept, not leaked per request), and the young generation is collected after
20,000 allocations instead of 700, the older ones correspondingly less often. The same burst then
spent 0.08 s in 7 collections. Nothing the functions do depends on when cycles are collected;
Lambda's runtime is left as it is (this tunes only the local stack's own processes).
"""

from __future__ import annotations

import gc

THRESHOLDS = (20_000, 20, 100)


def settle() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
