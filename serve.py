"""Start the API server: ``python serve.py [--host H] [--port P] [--db URL] [--data-dir D] [--demo]``."""

import sys

from api.server import main

if __name__ == "__main__":
    sys.exit(main())
