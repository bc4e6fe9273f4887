"""A/B for bench/micro.py --ab: B = Django's handler without every middleware (the bound of the chain).

What B saves is what the piece costs; B lacks what the piece adds, so it is not a candidate.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _chain import handler_without, toggler  # bench/ab/_chain.py

toggle = toggler(handler_without(lambda path: True))
