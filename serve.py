"""Start the API server; `python serve.py --help` lists the options."""

import sys

from api.server import main

if __name__ == "__main__":
    sys.exit(main())
