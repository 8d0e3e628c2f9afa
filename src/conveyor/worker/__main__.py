"""`python -m conveyor.worker LAUNCH`: the process `conveyor worker` becomes (see `launch`)."""

import sys

from conveyor.worker.launch import main

sys.exit(main(sys.argv[1]))
