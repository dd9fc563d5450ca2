"""redis-datafy: a message debounce buffer for chatbots, on Redis."""

__version__ = "1.0.0"
