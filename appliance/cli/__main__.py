"""``python -m appliance.cli``: the same as the ``blvm`` command."""

import sys

from appliance.cli import main

sys.exit(main())
