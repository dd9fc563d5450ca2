"""The monitor daemon: `python3 monitor.py`."""

from datafy.launch import run_monitor

if __name__ == "__main__":
    raise SystemExit(run_monitor())
