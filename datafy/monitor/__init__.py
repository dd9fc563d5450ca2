"""The monitor daemon: seals batches when their users go quiet and delivers them to the webhook."""

from datafy.monitor.daemon import Monitor

__all__ = ["Monitor"]
