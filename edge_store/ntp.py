"""Whether the system clock is NTP-synchronised right now.

A Pi has no battery-backed clock: until NTP has synchronised, it may believe
it is 1970 or last week. Each sample records this flag beside its time. The
kernel knows (adjtimex's STA_UNSYNC bit, which is what `timedatectl` reads);
asking costs one read-only syscall, so the answer is cached for a few seconds.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time

STA_UNSYNC = 0x0040
TIME_ERROR = 5


class _Timex(ctypes.Structure):
    # struct timex from <sys/timex.h> (Linux, 64- and 32-bit: longs throughout).
    _fields_ = [
        ("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long), ("status", ctypes.c_int),
        ("constant", ctypes.c_long), ("precision", ctypes.c_long), ("tolerance", ctypes.c_long),
        ("time_sec", ctypes.c_long), ("time_usec", ctypes.c_long), ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long), ("jitter", ctypes.c_long), ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long), ("jitcnt", ctypes.c_long), ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long), ("stbcnt", ctypes.c_long), ("tai", ctypes.c_int),
        ("_padding", ctypes.c_int * 11),
    ]


def _load_adjtimex():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.adjtimex
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.POINTER(_Timex)]
    fn.restype = ctypes.c_int
    return fn


_adjtimex = _load_adjtimex()


def kernel_synchronised() -> bool:
    """Ask the kernel once. False when it cannot tell (then we do not claim sync)."""
    if _adjtimex is None:
        return False
    tx = _Timex()
    tx.modes = 0  # read only
    state = _adjtimex(ctypes.byref(tx))
    if state < 0:
        return False
    return state != TIME_ERROR and not (tx.status & STA_UNSYNC)


class SyncFlag:
    """Cached NTP state: `flag()` asks the kernel at most every `ttl_s` seconds."""

    def __init__(self, ttl_s: float = 30.0, probe=kernel_synchronised, clock=time.monotonic):
        self._ttl_s = ttl_s
        self._probe = probe
        self._clock = clock
        self._value = False
        self._at: float | None = None

    def flag(self) -> bool:
        now = self._clock()
        if self._at is None or now - self._at >= self._ttl_s:
            self._value = bool(self._probe())
            self._at = now
        return self._value
