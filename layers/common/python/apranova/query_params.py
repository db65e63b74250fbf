"""Lists that refuse what they do not understand: a query parameter a route does not declare is a 422
naming it, never silently ignored (``?email=dana`` on a list that filters by ``q`` would otherwise
answer with everyone). Used by the admin lists of the admin and payments functions."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

from apranova.errors import ValidationFailed

MAX_REPORTED = 10


def declared(app: APIGatewayHttpResolver) -> set[str]:
    """The query parameters the current route declares (their names as sent, i.e. aliases)."""
    route = app.context.get("_route")
    if route is None:
        return set()
    return {param.alias for param in route.dependant.query_params}


def known_query_only(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response:
    """A route middleware: 422 when the request carries a query parameter the route does not take."""
    given = app.current_event.query_string_parameters or {}
    unknown = sorted(set(given) - declared(app))
    if unknown:
        names = ", ".join(unknown[:MAX_REPORTED])
        raise ValidationFailed(
            f"Unknown query parameter{'s' if len(unknown) > 1 else ''}: {names}.",
            details=[
                {"field": f"query.{name}", "code": "unknown_parameter", "message": "not a parameter of this route"}
                for name in unknown[:MAX_REPORTED]
            ],
        )
    return next_middleware(app)
