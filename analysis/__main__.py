import sys

from spinescope.analysis.cli import main

sys.exit(main())
