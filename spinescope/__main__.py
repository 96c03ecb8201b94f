import sys

from spinescope.cli import main

sys.exit(main())
