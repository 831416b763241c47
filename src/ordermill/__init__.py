"""ordermill: an order-flow engine for made-to-order and digital manufacturing."""

__version__ = "0.1.0"
