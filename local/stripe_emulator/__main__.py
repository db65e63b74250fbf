"""Run the Stripe emulator: ``python -m local.stripe_emulator --port N --webhook-url URL``."""

from __future__ import annotations

import argparse
import os

from werkzeug.serving import run_simple

from local.stripe_emulator.app import StripeEmulator


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Local Stripe emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--webhook-url", default=None, help="where signed events are POSTed")
    parser.add_argument(
        "--webhook-secret",
        default=os.environ.get("STRIPE_WEBHOOK_SECRET"),
        help="whsec_... used to sign events (default: $STRIPE_WEBHOOK_SECRET)",
    )
    args = parser.parse_args(argv)
    app = StripeEmulator(webhook_url=args.webhook_url, webhook_secret=args.webhook_secret)
    run_simple(args.host, args.port, app, threaded=True)


if __name__ == "__main__":
    main()
