"""`python -m quant_api [--host H] [--port P]`: start the API (uvicorn)."""

import sys

from quant_api.server import main

sys.exit(main())
