"""``python -m shadowtap.cli``: the ``shadowtap`` command."""

from __future__ import annotations

import sys

from shadowtap.cli import main

sys.exit(main())
