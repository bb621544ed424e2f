"""``python -m inspo_plugin``: see :mod:`inspo_plugin.cli`."""

import sys

from inspo_plugin.cli import main

if __name__ == "__main__":
    sys.exit(main())
