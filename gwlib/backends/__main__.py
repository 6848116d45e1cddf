"""``python -m gwlib.backends serve ...``: run the echo server (see ``server.py``)."""
import sys

from .server import main

sys.exit(main())
