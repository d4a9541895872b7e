"""``python -m unlearnkit`` (also under launchers: ``torchrun -m unlearnkit …``)."""

import sys

from unlearnkit.cli import main

sys.exit(main())
