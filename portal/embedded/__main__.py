import sys

from portal.embedded.cli import main

sys.exit(main())
