"""The fresh process that measures one memory case (``wavevision.bench.memory.cpu_peak_memory``)."""
import sys

from wavevision.bench.memory import child_main

if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
