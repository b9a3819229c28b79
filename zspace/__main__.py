import sys

from zspace.cli.main import main

sys.exit(main())
