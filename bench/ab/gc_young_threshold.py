"""A/B for bench/micro.py --ab: B = the young generation collected after 10,000 net new
container objects (``gateway_project.heap``, round 11), A = Python's 700. Run beside
``--on bench/ab/gc_freeze.py`` at the demo latencies with many clients: with the request path
free of reference cycles, what requests allocate is freed by reference counting, and a young
collection only comes when the objects alive grow by the threshold."""

import gc

_DEFAULT = gc.get_threshold()


def toggle(on: bool) -> None:
    gc.set_threshold(10_000 if on else _DEFAULT[0], _DEFAULT[1], _DEFAULT[2])
