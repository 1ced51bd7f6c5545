"""`python -m cardcore_gateway [--host H] [--port P] [--workers N]`: the gateway's own front."""

import sys

from cardcore_gateway.serve import main

sys.exit(main())
