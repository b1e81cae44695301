"""DomainBed's seeding rule, shared by hparam draws, data splits and job seeds."""

import hashlib


def seed_hash(*args) -> int:
    """DomainBed's ``seed_hash``: md5 of ``str(args)`` (the tuple's repr) modulo 2**31.

    Strings appear quoted and lists as ``[1, 2]`` because ``str`` of a tuple uses the repr of its
    items, so ``seed_hash('VLCS', 'ERM', [1, 2], 1, 0)`` equals DomainBed's value for that job.
    """
    digest = hashlib.md5(str(args).encode("utf-8")).hexdigest()
    return int(digest, 16) % (2**31)
