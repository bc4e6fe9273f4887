"""A/A for bench/micro.py --ab: a toggle that changes nothing (the noise floor of the moment)."""


def toggle(on: bool) -> None:
    pass
