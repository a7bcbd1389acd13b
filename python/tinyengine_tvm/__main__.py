"""``python -m tinyengine_tvm`` is the ``tvmc`` command."""
import sys

from .cli import main

sys.exit(main())
