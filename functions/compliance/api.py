"""The compliance API function's resolver. The routes live in one module per right (consent,
export, erasure), each registering on this ``app``; ``handler.py`` imports them all."""

from __future__ import annotations

from apranova.api import create_app

app = create_app()
