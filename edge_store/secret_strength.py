"""How strong a token signing secret is: `secret_problem` says why `[api] jwt_secret` is refused, or None.

Length, distinct characters and well-known words first, then `secret_bits`,
an estimate of the secret's entropy as a guesser who knows the usual
patterns sees it (runs, sequences, keyboard walks, repeated blocks).
"""

from __future__ import annotations

import math

MIN_SECRET_CHARS = 32
MIN_SECRET_DISTINCT = 12
MIN_SECRET_BITS = 128
WEAK_SECRETS = {"changeme", "secret", "password", "kammthaar", "jwt_secret", "your-secret-key"}
_CHARACTER_CLASSES = ("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789")
_OTHER_CHARACTERS = 33  # printable ASCII that is neither a letter nor a digit
_STEP = 3  # a run or a sequence: the third character on with the same difference, at most this
_REPEAT = 3  # a character continuing an earlier run of this many characters repeats it
# Keyboard rows (QWERTY, the digits): a walk along a row is a sequence too (`qwerty`, `asdf`, `0987`).
_KEYS = {ch: (row, col) for row, keys in enumerate(("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm"))
         for col, ch in enumerate(keys)}


def _walks(a: str, b: str, c: str) -> bool:
    """Whether c continues the walk a, b along a keyboard row (one key at a time, same direction)."""
    ka, kb, kc = (_KEYS.get(x.lower()) for x in (a, b, c))
    if ka is None or kb is None or kc is None or not ka[0] == kb[0] == kc[0]:
        return False
    return abs(kc[1] - kb[1]) == 1 and kc[1] - kb[1] == kb[1] - ka[1]


def secret_bits(secret: str) -> float:
    """An estimate of a secret's guessing entropy in bits, as a brute-force guesser who knows patterns sees it.

    Each character is worth log2(alphabet) bits, the alphabet being the character classes the secret uses
    (lower case, upper case, digits, others), except a predictable one, worth nothing: the third character
    on of a run, a sequence or a keyboard walk (`aaaa`, `abcd`, `9753`: the same small difference as the
    pair before; `qwer`, `lkjh`), or the continuation of a block of four seen earlier (`k3Xqk3Xqk3Xq`).
    Random text loses a few
    characters to chance (bench/secret_bits.py measures it: token_urlsafe(32) >= 230 bits, token_hex(16)
    >= 130); `0123456789abcdefghijklmnopqrstuv` is worth 21.
    """
    alphabet = sum(len(c) for c in _CHARACTER_CLASSES if any(ch in c for ch in secret))
    alphabet += _OTHER_CHARACTERS if any(not any(ch in c for c in _CHARACTER_CLASSES) for ch in secret) else 0
    per_char = math.log2(max(alphabet, 2))
    free = 0
    for i, ch in enumerate(secret):
        if i >= 2:
            step = ord(ch) - ord(secret[i - 1])
            if abs(step) <= _STEP and step == ord(secret[i - 1]) - ord(secret[i - 2]) \
                    or _walks(secret[i - 2], secret[i - 1], ch):
                continue
        if i >= _REPEAT and secret[i - _REPEAT:i + 1] in secret[:i]:
            continue
        free += 1
    return free * per_char


def secret_problem(secret: str) -> str | None:
    """Why a token signing secret is not strong enough, or None."""
    if not secret:
        return "[api] jwt_secret is not set"
    if len(secret) < MIN_SECRET_CHARS:
        return f"[api] jwt_secret is too short: at least {MIN_SECRET_CHARS} characters"
    if len(set(secret)) < MIN_SECRET_DISTINCT or any(w in secret.lower() for w in WEAK_SECRETS):
        return "[api] jwt_secret is too easy to guess: use random characters"
    bits = secret_bits(secret)
    if bits < MIN_SECRET_BITS:
        return (f"[api] jwt_secret is too easy to guess: runs, sequences or repeated blocks leave about "
                f"{bits:.0f} bits, at least {MIN_SECRET_BITS} are needed: use random characters")
    return None
