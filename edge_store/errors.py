"""One error hierarchy for the whole stack.

Every error carries what happened and whether trying again can help
(`retryable`). Library code raises; only loop owners, the CLI and the API's
error handler log or turn errors into exit codes and HTTP answers.
"""

from __future__ import annotations


class KammthaarError(Exception):
    """Base of every error we raise on purpose."""

    retryable = False

    def __init__(self, message: str, *, retryable: bool | None = None):
        super().__init__(message)
        self.message = message
        if retryable is not None:
            self.retryable = retryable

    def __str__(self) -> str:
        return self.message


class ConfigError(KammthaarError):
    """A configuration key, type or value is wrong; the message names the key."""


class StoreError(KammthaarError):
    """The SQLite store could not do what was asked."""


class ModbusError(KammthaarError):
    """A read from the device failed.

    `kind` is the counter it lands in: timeout, crc, exception, port,
    no_response, short_answer.
    """

    retryable = True

    def __init__(self, message: str, *, kind: str, block: str = "", retryable: bool | None = None):
        super().__init__(message, retryable=retryable)
        self.kind = kind
        self.block = block


class IllegalAddressError(ModbusError):
    """The device answered exception code 2 (illegal data address) for a block."""

    retryable = False


class DecodeError(KammthaarError):
    """Raw words that do not decode to a value the device can physically report."""

    def __init__(self, message: str, *, register: str = ""):
        super().__init__(message)
        self.register = register
