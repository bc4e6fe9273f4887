"""A/B for bench/micro.py --ab: B = the collector tuned for a server process (startup objects
frozen out of every collection, young generation collected every 50,000 allocations instead of
700), A = Python's defaults."""

import gc

_DEFAULT = gc.get_threshold()


def toggle(on: bool) -> None:
    if on:
        gc.freeze()
        gc.set_threshold(50_000, _DEFAULT[1], _DEFAULT[2])
    else:
        gc.unfreeze()
        gc.set_threshold(*_DEFAULT)
