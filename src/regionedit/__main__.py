"""``python -m regionedit ...``: the ``regionedit`` command (e.g. under ``accelerate launch -m regionedit train ...``)."""

import sys

from regionedit.cli.main import main

sys.exit(main())
