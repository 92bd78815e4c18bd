"""``python -m radioseg_utils``: the same as the ``radioseg`` command."""

import sys

from radioseg_utils.cli import main

sys.exit(main())
