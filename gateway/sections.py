"""The sections of the API beyond the spot endpoints in ``gateway/server.py`` (issue 18),
each a module of its own (``gateway/http.py`` says what a section provides). The server
adds their routes and weights, the OpenAPI document their rows."""
from __future__ import annotations

from gateway import products, transparency, user_stream

SECTIONS: list = [products,          # margin, perpetuals, convert (OTC), withdrawals
                  transparency,      # insurance funds, ADL, liquidations, rules; the page
                  user_stream]       # listen keys and the user-data stream
