"""The sections of the API beyond the spot endpoints in ``gateway/server.py`` (issue 18),
each a module of its own (``gateway/http.py`` says what a section provides). The server
adds their routes and weights, the OpenAPI document their rows."""
from __future__ import annotations

SECTIONS: list = []
