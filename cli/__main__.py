"""`python -m cli ...` runs the `tagger` command."""

import sys

from cli.main import main

sys.exit(main())
