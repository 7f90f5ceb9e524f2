"""datastory: transaction data in, a reproducible consulting pack out."""

__version__ = "0.1.0"
