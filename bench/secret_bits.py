"""How the secret check's entropy estimate (edge_store/secret_strength.py `secret_bits`) sees random and patterned
secrets: the lowest estimate over many random secrets of each kind, against the threshold, and the patterned
ones. Prints figures; not a test. `python bench/secret_bits.py`"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge_store.secret_strength import MIN_SECRET_BITS, secret_bits, secret_problem  # noqa: E402

N = 20000
KINDS = {
    "token_urlsafe(32)": lambda: secrets.token_urlsafe(32),
    "token_hex(16)": lambda: secrets.token_hex(16),
    "token_hex(32)": lambda: secrets.token_hex(32),
}
PATTERNED = ["0123456789abcdefghijklmnopqrstuv", "abcdefghijklmnopqrstuvwxyzABCDEF", "aB3$" * 8,
             "k3Xq9Lk3Xq9Lk3Xq9Lk3Xq9Lk3Xq9Lk3", "qwertyuiopasdfghjklzxcvbnm123456", "Jx8vQ2mZr7TnK4pW" * 2,
             "zyxwvutsrqponmlkjihgfedcba987654"]


def main() -> None:
    print(f"threshold: {MIN_SECRET_BITS} bits")
    for name, make in KINDS.items():
        made = [make() for _ in range(N)]
        values = sorted(secret_bits(m) for m in made)
        below = sum(v < MIN_SECRET_BITS for v in values)
        refused = sum(secret_problem(m) is not None for m in made)  # also the older length/distinct checks
        print(f"{name:18} n={N}: min {values[0]:.0f} bits, median {values[N // 2]:.0f}, "
              f"min/threshold {values[0] / MIN_SECRET_BITS:.2f}, below the threshold {below}, "
              f"refused by any check {refused}")
    for p in PATTERNED:
        print(f"{p!r:40} {secret_bits(p):6.0f} bits  {'refused' if secret_problem(p) else 'ACCEPTED'}")


if __name__ == "__main__":
    main()
