"""Concurrent requests in one process each read their own event (local/resolver_threads.py): the
local stack runs many Lambda environments in one process, Powertools keeps the event on its class."""

from __future__ import annotations

import threading

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from local import resolver_threads
from local.events import LambdaContext, http_api_event


def test_two_apps_serving_at_once_each_see_their_own_request() -> None:
    resolver_threads.install()
    resolver_threads.install()  # idempotent
    inside, release = threading.Barrier(3), threading.Event()  # both requests and this thread
    seen: dict[str, str] = {}

    def app_for(name: str) -> APIGatewayHttpResolver:
        app = APIGatewayHttpResolver()

        @app.post("/x")
        def handle() -> dict[str, str]:
            inside.wait(timeout=10)  # both requests are being served now
            release.wait(timeout=10)
            seen[name] = app.current_event.json_body["who"]
            return {"who": app.current_event.json_body["who"]}

        return app

    apps = {"checkout": app_for("checkout"), "webhook": app_for("webhook")}
    answers: dict[str, dict] = {}

    def call(name: str) -> None:
        event = http_api_event("POST", "/x", body=f'{{"who": "{name}"}}', headers={"content-type": "application/json"})
        answers[name] = apps[name].resolve(event, LambdaContext(name))

    threads = [threading.Thread(target=call, args=(name,)) for name in apps]
    for thread in threads:
        thread.start()
    inside.wait(timeout=10)
    release.set()
    for thread in threads:
        thread.join(timeout=10)
    assert seen == {"checkout": "checkout", "webhook": "webhook"}
    assert all(answers[name]["statusCode"] == 200 and f'"{name}"' in answers[name]["body"] for name in apps)
