"""An in-memory Stripe emulator speaking the slice of Stripe's REST API v1 we use.

Requests are form-encoded with Stripe's nested syntax (``a[b][c]=``, ``a[0]=``), responses
are JSON in Stripe's object shapes, errors use Stripe's ``{"error": {...}}`` envelope. Events
are signed and delivered to one webhook URL the way Stripe does it. Besides the API, ``/pay/{id}``
is a page a person can pay on, and ``/_test/...`` are test controls (docs/principles.md §9).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import os
import pickle
import re
import secrets
import threading
import time
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

API_VERSION = "2025-08-27.basil"
SUCCESS_CARD = "4242424242424242"
DECLINE_CARD = "4000000000000002"
SUCCESS_PAYMENT_METHODS = {"pm_card_visa", "pm_card_mastercard", "pm_card_amex"}
DECLINE_PAYMENT_METHODS = {"pm_card_chargeDeclined", "pm_card_visa_chargeDeclined"}
SESSION_LIFETIME = 24 * 3600


class StripeError(Exception):
    """An error answered in Stripe's envelope."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        extra: dict[str, Any] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"type": type, "message": message}
        if code:
            self.body["code"] = code
        if param:
            self.body["param"] = param
        self.body.update(extra or {})


def sign_payload(payload: str, secret: str, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header value: HMAC-SHA256 over ``"{t}.{payload}"``."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def parse_form(items: list[tuple[str, str]]) -> dict[str, Any]:
    """Decode Stripe's bracket syntax into nested dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in items:
        head = key.split("[", 1)[0]
        parts = [head, *re.findall(r"\[([^\]]*)\]", key)]
        node = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if part == "":  # a[]=x appends
                part = str(len(node))
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
                if not isinstance(node, dict):
                    raise StripeError(400, f"Invalid value for {key}.", param=key)
    return _listify(root)


def _listify(value: Any) -> Any:
    if isinstance(value, dict):
        converted = {k: _listify(v) for k, v in value.items()}
        if converted and all(k.isdigit() for k in converted):
            return [converted[k] for k in sorted(converted, key=int)]
        return converted
    return value


def _int(params: dict[str, Any], name: str, *, required: bool = False) -> int | None:
    value = params.get(name)
    if value in (None, ""):
        if required:
            raise StripeError(400, f"Missing required param: {name}.", code="parameter_missing", param=name)
        return None
    try:
        return int(str(value))
    except (TypeError, ValueError):
        raise StripeError(400, f"Invalid integer: {value}", code="parameter_invalid_integer", param=name) from None


# The parameters each endpoint takes (a subset of what Stripe takes at the SDK's API version, which
# tests/unit/test_stripe_emulator_params.py holds it to): anything else is refused as Stripe refuses it.
SESSION_CREATE_PARAMS = frozenset(
    {
        "mode",
        "line_items",
        "customer",
        "customer_email",
        "client_reference_id",
        "metadata",
        "payment_intent_data",
        "success_url",
        "cancel_url",
        "expires_at",
        "allowed_payment_method_types",
    }
)
PAYMENT_INTENT_CREATE_PARAMS = frozenset(
    {
        "amount",
        "currency",
        "customer",
        "metadata",
        "description",
        "receipt_email",
        "payment_method",
        "allowed_payment_method_types",
        "confirm",
        "automatic_payment_methods",
    }
)
PAYMENT_INTENT_CONFIRM_PARAMS = frozenset({"payment_method", "return_url"})
CUSTOMER_CREATE_PARAMS = frozenset({"email", "name", "description", "metadata", "phone"})
REFUND_CREATE_PARAMS = frozenset({"payment_intent", "charge", "amount", "reason", "metadata"})


def _check_unknown(params: dict[str, Any], allowed: frozenset[str]) -> None:
    for key in params:
        if key not in allowed | {"expand"}:
            raise StripeError(400, f"Received unknown parameter: {key}", code="parameter_unknown", param=key)


def _metadata(params: dict[str, Any], name: str = "metadata") -> dict[str, str]:
    value = params.get(name) or {}
    if not isinstance(value, dict):
        raise StripeError(400, f"Invalid object: {name}", param=name)
    return {str(k): str(v) for k, v in value.items() if v != ""}


def _new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(12)


@dataclass
class Delivery:
    event_id: str
    type: str
    attempt: int
    status: int | None
    error: str | None
    at: float


@dataclass
class _Idempotent:
    fingerprint: str
    status: int
    body: dict[str, Any]


@dataclass
class _State:
    objects: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    idempotency: dict[tuple[str, str], _Idempotent] = field(default_factory=dict)
    deliveries: list[Delivery] = field(default_factory=list)


class StripeEmulator:
    """The WSGI app. One lock guards all state; webhook delivery happens outside it."""

    def __init__(
        self,
        *,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        retry_delays: tuple[float, ...] = (0.05, 0.1, 0.2),
        delivery_timeout: float = 10.0,
        api_key: str | None = None,
        enabled_events: Collection[str] | None = None,
    ):
        self.webhook_url = webhook_url
        # The endpoint's subscribed event types, as a Stripe webhook endpoint has them (None: every
        # type, Stripe's "*"): other events are recorded but never sent to the webhook.
        self.enabled_events = frozenset(enabled_events) if enabled_events is not None else None
        self.webhook_secret = webhook_secret
        # The account's secret key: when set, any other key is refused as Stripe refuses a rolled
        # (rotated) or unknown key; when None, any well-formed test key is accepted.
        self.api_key = api_key
        self.retry_delays = retry_delays
        self.delivery_timeout = delivery_timeout
        self._lock = threading.RLock()
        self._state = _State()
        # One worker keeps API-triggered deliveries in order, like a queue.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stripe-webhooks")
        self._pending: list[Future[Any]] = []
        self._http = requests.Session()
        api: list[tuple[str, str, Callable[..., tuple[int, dict[str, Any]]]]] = [
            ("POST", "/v1/checkout/sessions", self._create_session),
            ("GET", "/v1/checkout/sessions/<id>", self._get("checkout.session")),
            ("GET", "/v1/checkout/sessions/<id>/line_items", self._session_line_items),
            ("POST", "/v1/checkout/sessions/<id>/expire", self._expire_session),
            ("POST", "/v1/payment_intents", self._create_payment_intent),
            ("GET", "/v1/payment_intents/<id>", self._get("payment_intent")),
            ("POST", "/v1/payment_intents/<id>/confirm", self._confirm_payment_intent),
            ("POST", "/v1/customers", self._create_customer),
            ("GET", "/v1/customers/<id>", self._get("customer")),
            ("GET", "/v1/charges/<id>", self._get("charge")),
            ("POST", "/v1/refunds", self._create_refund),
            ("GET", "/v1/refunds/<id>", self._get("refund")),
            ("GET", "/v1/disputes/<id>", self._get("dispute")),
            ("GET", "/v1/events", self._list_events),
            ("GET", "/v1/events/<id>", self._get("event")),
        ]
        self._api = {f"{m} {p}": h for m, p, h in api}
        rules = [Rule(p, methods=[m], endpoint=f"{m} {p}") for m, p, _ in api]
        rules += [
            Rule("/pay/<id>", methods=["GET"], endpoint="pay_page"),
            Rule("/pay/<id>", methods=["POST"], endpoint="pay_form"),
            Rule("/_test/checkout/sessions/<id>/pay", methods=["POST"], endpoint="test_pay"),
            Rule("/_test/charges/<id>/dispute", methods=["POST"], endpoint="test_dispute"),
            Rule("/_test/disputes/<id>/close", methods=["POST"], endpoint="test_close_dispute"),
            Rule("/_test/deliveries", methods=["GET"], endpoint="test_deliveries"),
            Rule("/_test/flush", methods=["POST"], endpoint="test_flush"),
        ]
        self._map = Map(rules, strict_slashes=False)

    # ---- WSGI plumbing -------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        return self.dispatch(Request(environ))(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        adapter = self._map.bind_to_environ(request.environ)
        try:
            endpoint, args = adapter.match()
        except HTTPException as exc:
            if request.path.startswith("/v1/"):
                return self._error(StripeError(404, f"Unrecognized request URL ({request.method}: {request.path})."))
            return exc.get_response(request.environ)  # type: ignore[return-value]
        try:
            if endpoint in self._api:
                return self._api_call(request, self._api[endpoint], args)
            return getattr(self, f"_{endpoint}")(request, **args)
        except StripeError as exc:
            return self._error(exc)

    @staticmethod
    def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
        return Response(json.dumps(body), status=status, mimetype="application/json", headers=headers)

    def _error(self, exc: StripeError) -> Response:
        return self._json(exc.status, {"error": exc.body})

    def _api_call(self, request: Request, handler: Callable[..., Any], args: Mapping[str, Any]) -> Response:
        key = self._authenticate(request)
        source = request.form if request.method == "POST" else request.args
        params = parse_form(list(source.items(multi=True)))
        idem_key = request.headers.get("Idempotency-Key") if request.method == "POST" else None
        fingerprint = json.dumps([request.method, request.path, params], sort_keys=True)
        events: list[dict[str, Any]] = []
        with self._lock:
            if idem_key:
                previous = self._state.idempotency.get((key, idem_key))
                if previous is not None:
                    if previous.fingerprint != fingerprint:
                        raise StripeError(
                            400,
                            "Keys for idempotent requests can only be used with the same parameters "
                            f"they were first used with. Try using a key other than '{idem_key}' if "
                            "you meant to execute a different request.",
                            type="idempotency_error",
                        )
                    return self._json(previous.status, previous.body, {"Idempotent-Replayed": "true"})
            try:
                status, body = handler(params, events=events, idem_key=idem_key, base_url=request.host_url, **args)
            except StripeError as exc:
                status, body = exc.status, {"error": exc.body}
                # Stripe stores 4xx results too, except for validation of the key itself.
            if idem_key:
                self._state.idempotency[(key, idem_key)] = _Idempotent(fingerprint, status, body)
        self._deliver_async(events)
        return self._json(status, body, {"Request-Id": _new_id("req_")})

    def roll_api_key(self, new_key: str) -> None:
        """Stripe's "roll key" with immediate expiry: from now on only ``new_key`` is accepted."""
        self.api_key = new_key

    def _authenticate(self, request: Request) -> str:
        header = request.headers.get("Authorization", "")
        if not header:
            raise StripeError(
                401,
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
            )
        scheme, _, key = header.partition(" ")
        if request.authorization is not None and request.authorization.type == "basic":
            key = request.authorization.username or ""
        elif scheme.lower() != "bearer":
            key = ""
        if not re.fullmatch(r"sk_test_\w+", key.strip()) or (self.api_key is not None and key.strip() != self.api_key):
            shown = key[:8] + "*" * max(0, len(key) - 12) + key[-4:] if len(key) > 12 else key
            raise StripeError(401, f"Invalid API Key provided: {shown}", code="api_key_invalid")
        return key.strip()

    # ---- persistence (the local stack keeps its state across restarts) -------------------

    def save(self, path: Path) -> None:
        """Writes the objects, events and idempotency records (not the delivery log) to ``path``."""
        with self._lock:
            state = self._state
            data = pickle.dumps({"objects": state.objects, "events": state.events, "idempotency": state.idempotency})
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)

    def load(self, path: Path) -> bool:
        if not path.exists():
            return False
        state = pickle.loads(path.read_bytes())  # noqa: S301 - our own file in the local state dir
        with self._lock:
            self._state.objects = state["objects"]
            self._state.events = state["events"]
            self._state.idempotency = state["idempotency"]
        return True

    # ---- state helpers -------------------------------------------------------------------

    def _put(self, obj: dict[str, Any]) -> dict[str, Any]:
        self._state.objects.setdefault(obj["object"], {})[obj["id"]] = obj
        return obj

    def _find(self, kind: str, object_id: str, param: str = "id") -> dict[str, Any]:
        obj = self._state.objects.get(kind, {}).get(object_id)
        if obj is None:
            raise StripeError(404, f"No such {kind}: '{object_id}'", code="resource_missing", param=param)
        return obj

    @staticmethod
    def _public(obj: dict[str, Any]) -> dict[str, Any]:
        return json.loads(json.dumps({k: v for k, v in obj.items() if not k.startswith("_")}))

    def _base(self, kind: str, prefix: str, **fields: Any) -> dict[str, Any]:
        return {"id": _new_id(prefix), "object": kind, "created": int(time.time()), "livemode": False, **fields}

    def _event(self, events: list[dict[str, Any]], type: str, obj: dict[str, Any], idem_key: str | None = None) -> None:
        event = self._base(
            "event",
            "evt_",
            api_version=API_VERSION,
            data={"object": self._public(obj)},
            pending_webhooks=1 if self._subscribed(type) else 0,
            request={"id": None, "idempotency_key": idem_key},
            type=type,
        )
        self._put(event)
        self._state.events.append(event)
        events.append(event)

    def _get(self, kind: str) -> Callable[..., tuple[int, dict[str, Any]]]:
        def handler(params: dict[str, Any], *, id: str, **_: Any) -> tuple[int, dict[str, Any]]:
            return 200, self._public(self._find(kind, id))

        return handler

    # ---- Checkout Sessions ---------------------------------------------------------------

    def _create_session(self, params: dict[str, Any], *, base_url: str = "", **_: Any) -> tuple[int, dict[str, Any]]:
        _check_unknown(params, SESSION_CREATE_PARAMS)
        mode = params.get("mode")
        if not mode:
            raise StripeError(400, "Missing required param: mode.", code="parameter_missing", param="mode")
        if mode != "payment":
            raise StripeError(400, f"This emulator supports mode=payment only, not '{mode}'.", param="mode")
        if not params.get("success_url"):
            raise StripeError(
                400, "Missing required param: success_url.", code="parameter_missing", param="success_url"
            )
        items = params.get("line_items")
        if not isinstance(items, list) or not items:
            raise StripeError(400, "Missing required param: line_items.", code="parameter_missing", param="line_items")
        line_items, currency, total = [], None, 0
        for i, item in enumerate(items):
            where = f"line_items[{i}]"
            if "price" in item:
                raise StripeError(404, f"No such price: '{item['price']}'", code="resource_missing", param=where)
            pd = item.get("price_data")
            if not isinstance(pd, dict):
                raise StripeError(
                    400, f"Missing required param: {where}[price_data].", code="parameter_missing", param=where
                )
            unit = _int(pd, "unit_amount", required=True) or 0
            quantity = _int(item, "quantity", required=True) or 0
            if unit < 0 or quantity < 1:
                raise StripeError(400, f"Invalid amount or quantity in {where}.", param=where)
            cur = str(pd.get("currency", "")).lower()
            if not cur:
                raise StripeError(
                    400, f"Missing required param: {where}[price_data][currency].", code="parameter_missing"
                )
            if currency not in (None, cur):
                raise StripeError(400, "All line items must use the same currency.", param=where)
            currency = cur
            name = (pd.get("product_data") or {}).get("name")
            if not name:
                raise StripeError(
                    400,
                    f"Missing required param: {where}[price_data][product_data][name].",
                    code="parameter_missing",
                )
            total += unit * quantity
            line_items.append(
                self._base(
                    "item",
                    "li_",
                    amount_subtotal=unit * quantity,
                    amount_total=unit * quantity,
                    currency=cur,
                    description=name,
                    quantity=quantity,
                    price={"object": "price", "currency": cur, "unit_amount": unit, "product_data": {"name": name}},
                )
            )
        now = int(time.time())
        expires_at = _int(params, "expires_at") or now + SESSION_LIFETIME
        if not now + 1800 - 60 <= expires_at <= now + SESSION_LIFETIME + 60:
            raise StripeError(
                400, "The `expires_at` timestamp must be between 30 minutes and 24 hours from now.", param="expires_at"
            )
        pid = params.get("payment_intent_data") or {}
        session = self._base(
            "checkout.session",
            "cs_test_",
            amount_subtotal=total,
            amount_total=total,
            cancel_url=params.get("cancel_url"),
            client_reference_id=params.get("client_reference_id"),
            currency=currency,
            customer=params.get("customer"),
            customer_details=None,
            customer_email=params.get("customer_email"),
            expires_at=expires_at,
            metadata=_metadata(params),
            mode="payment",
            payment_intent=None,
            payment_method_types=params.get("allowed_payment_method_types") or ["card"],
            payment_status="unpaid",
            status="open",
            success_url=params["success_url"],
            url=None,
            _line_items=line_items,
            _payment_intent_metadata=_metadata(pid) if isinstance(pid, dict) else {},
        )
        session["url"] = f"{base_url.rstrip('/')}/pay/{session['id']}"
        self._put(session)
        return 200, self._public(session)

    def _session_line_items(self, params: dict[str, Any], *, id: str, **_: Any) -> tuple[int, dict[str, Any]]:
        session = self._find("checkout.session", id)
        data = session["_line_items"]
        return 200, {
            "object": "list",
            "data": data,
            "has_more": False,
            "url": f"/v1/checkout/sessions/{id}/line_items",
        }

    def _expire_session(
        self, params: dict[str, Any], *, id: str, events: list[dict[str, Any]], idem_key: str | None, **_: Any
    ) -> tuple[int, dict[str, Any]]:
        session = self._find("checkout.session", id)
        if session["status"] != "open":
            raise StripeError(
                400,
                f'Only Checkout Sessions with a status in ["open"] can be expired. This Checkout '
                f"Session has a status of {session['status']}.",
            )
        session.update(status="expired", url=None)
        self._event(events, "checkout.session.expired", session, idem_key)
        return 200, self._public(session)

    # ---- PaymentIntents and charges ------------------------------------------------------

    def _new_payment_intent(
        self, amount: int, currency: str, metadata: dict[str, str], customer: str | None, **extra: Any
    ) -> dict[str, Any]:
        pi = self._base(
            "payment_intent",
            "pi_",
            amount=amount,
            amount_received=0,
            currency=currency,
            customer=customer,
            description=extra.get("description"),
            last_payment_error=None,
            latest_charge=None,
            metadata=metadata,
            payment_method=None,
            payment_method_types=["card"],
            receipt_email=extra.get("receipt_email"),
            status="requires_payment_method",
        )
        pi["client_secret"] = f"{pi['id']}_secret_{secrets.token_hex(12)}"
        return self._put(pi)

    def _charge_intent(
        self, pi: dict[str, Any], payment_method: str, succeed: bool, events: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """Succeed or decline a PaymentIntent, with its charge and events."""
        charge = self._put(
            self._base(
                "charge",
                "ch_",
                amount=pi["amount"],
                amount_captured=pi["amount"] if succeed else 0,
                amount_refunded=0,
                captured=succeed,
                currency=pi["currency"],
                customer=pi["customer"],
                disputed=False,
                failure_code=None if succeed else "card_declined",
                failure_message=None if succeed else "Your card was declined.",
                metadata=dict(pi["metadata"]),
                paid=succeed,
                payment_intent=pi["id"],
                payment_method=payment_method,
                refunded=False,
                status="succeeded" if succeed else "failed",
            )
        )
        pi.update(latest_charge=charge["id"], payment_method=payment_method)
        if succeed:
            pi.update(status="succeeded", amount_received=pi["amount"], last_payment_error=None)
            self._event(events, "charge.succeeded", charge)
            self._event(events, "payment_intent.succeeded", pi)
        else:
            pi.update(
                status="requires_payment_method",
                last_payment_error={
                    "type": "card_error",
                    "code": "card_declined",
                    "decline_code": "generic_decline",
                    "message": "Your card was declined.",
                    "charge": charge["id"],
                    "payment_method": {"id": payment_method, "object": "payment_method", "type": "card"},
                },
            )
            self._event(events, "charge.failed", charge)
            self._event(events, "payment_intent.payment_failed", pi)
        return charge

    def _create_payment_intent(
        self, params: dict[str, Any], *, events: list[dict[str, Any]], **_: Any
    ) -> tuple[int, dict[str, Any]]:
        _check_unknown(params, PAYMENT_INTENT_CREATE_PARAMS)
        amount = _int(params, "amount", required=True) or 0
        if amount < 1:
            raise StripeError(400, "This value must be greater than or equal to 1.", param="amount")
        currency = str(params.get("currency") or "").lower()
        if not currency:
            raise StripeError(400, "Missing required param: currency.", code="parameter_missing", param="currency")
        customer = params.get("customer")
        if customer:
            self._find("customer", customer, "customer")
        pi = self._new_payment_intent(
            amount,
            currency,
            _metadata(params),
            customer,
            description=params.get("description"),
            receipt_email=params.get("receipt_email"),
        )
        if params.get("payment_method"):
            pi.update(payment_method=params["payment_method"], status="requires_confirmation")
        self._event(events, "payment_intent.created", pi)
        if params.get("confirm") == "true":
            return self._confirm(pi, params, events)
        return 200, self._public(pi)

    def _confirm_payment_intent(
        self, params: dict[str, Any], *, id: str, events: list[dict[str, Any]], **_: Any
    ) -> tuple[int, dict[str, Any]]:
        _check_unknown(params, PAYMENT_INTENT_CONFIRM_PARAMS)
        return self._confirm(self._find("payment_intent", id), params, events)

    def _confirm(
        self, pi: dict[str, Any], params: dict[str, Any], events: list[dict[str, Any]]
    ) -> tuple[int, dict[str, Any]]:
        if pi["status"] == "succeeded":
            raise StripeError(
                400,
                "You cannot confirm this PaymentIntent because it has already succeeded "
                "after being previously confirmed.",
                code="payment_intent_unexpected_state",
                extra={"payment_intent": self._public(pi)},
            )
        pm = params.get("payment_method") or pi["payment_method"]
        if not pm:
            raise StripeError(
                400,
                "You cannot confirm this PaymentIntent because it's missing a payment method.",
                code="payment_intent_unexpected_state",
                param="payment_method",
            )
        if pm in SUCCESS_PAYMENT_METHODS:
            self._charge_intent(pi, pm, True, events)
            return 200, self._public(pi)
        if pm in DECLINE_PAYMENT_METHODS:
            charge = self._charge_intent(pi, pm, False, events)
            raise StripeError(
                402,
                "Your card was declined.",
                type="card_error",
                code="card_declined",
                extra={
                    "decline_code": "generic_decline",
                    "charge": charge["id"],
                    "payment_intent": self._public(pi),
                },
            )
        raise StripeError(404, f"No such PaymentMethod: '{pm}'", code="resource_missing", param="payment_method")

    # ---- Customers -----------------------------------------------------------------------

    def _create_customer(
        self, params: dict[str, Any], *, events: list[dict[str, Any]], **_: Any
    ) -> tuple[int, dict[str, Any]]:
        _check_unknown(params, CUSTOMER_CREATE_PARAMS)
        customer = self._put(
            self._base(
                "customer",
                "cus_",
                description=params.get("description"),
                email=params.get("email"),
                metadata=_metadata(params),
                name=params.get("name"),
                phone=params.get("phone"),
            )
        )
        self._event(events, "customer.created", customer)
        return 200, self._public(customer)

    # ---- Refunds -------------------------------------------------------------------------

    def _create_refund(
        self, params: dict[str, Any], *, events: list[dict[str, Any]], idem_key: str | None, **_: Any
    ) -> tuple[int, dict[str, Any]]:
        _check_unknown(params, REFUND_CREATE_PARAMS)
        if params.get("charge"):
            charge = self._find("charge", params["charge"], "charge")
        elif params.get("payment_intent"):
            pi = self._find("payment_intent", params["payment_intent"], "payment_intent")
            if pi["status"] != "succeeded" or not pi["latest_charge"]:
                raise StripeError(
                    400,
                    f"This PaymentIntent ({pi['id']}) does not have a successful charge to refund.",
                    code="charge_not_refundable",
                )
            charge = self._find("charge", pi["latest_charge"])
        else:
            raise StripeError(
                400, "One of the following params should be provided for this request: payment_intent or charge."
            )
        if not charge["paid"]:
            raise StripeError(400, f"Charge {charge['id']} has no successful payment to refund.")
        remaining = charge["amount"] - charge["amount_refunded"]
        if remaining <= 0:
            raise StripeError(400, f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded")
        amount = _int(params, "amount")
        amount = remaining if amount is None else amount
        if amount < 1:
            raise StripeError(400, "This value must be greater than or equal to 1.", param="amount")
        if amount > remaining:
            raise StripeError(
                400,
                f"Refund amount ({amount}) is greater than unrefunded amount on charge ({remaining})",
                code="amount_too_large",
                param="amount",
            )
        refund = self._put(
            self._base(
                "refund",
                "re_",
                amount=amount,
                charge=charge["id"],
                currency=charge["currency"],
                metadata=_metadata(params),
                payment_intent=charge["payment_intent"],
                reason=params.get("reason"),
                status="succeeded",
            )
        )
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        self._event(events, "refund.created", refund, idem_key)
        self._event(events, "charge.refunded", charge, idem_key)
        return 200, self._public(refund)

    # ---- Events --------------------------------------------------------------------------

    def _list_events(self, params: dict[str, Any], **_: Any) -> tuple[int, dict[str, Any]]:
        limit = min(max(_int(params, "limit") or 10, 1), 100)
        events = [e for e in reversed(self._state.events) if params.get("type") in (None, e["type"])]
        if params.get("starting_after"):
            ids = [e["id"] for e in events]
            if params["starting_after"] in ids:
                events = events[ids.index(params["starting_after"]) + 1 :]
        page = events[:limit]
        return 200, {
            "object": "list",
            "data": [self._public(e) for e in page],
            "has_more": len(events) > limit,
            "url": "/v1/events",
        }

    # ---- paying (test control and the page) ----------------------------------------------

    def _pay_session(self, session_id: str, card: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Run a card against an open session; returns the session and the events it raised."""
        card = re.sub(r"\D", "", card or "")
        events: list[dict[str, Any]] = []
        with self._lock:
            session = self._find("checkout.session", session_id)
            if session["status"] != "open":
                raise StripeError(400, f"Checkout Session {session_id} is {session['status']}, not open.")
            if session["expires_at"] <= time.time():
                session.update(status="expired", url=None)
                self._event(events, "checkout.session.expired", session)
                return self._public(session), events
            if card not in (SUCCESS_CARD, DECLINE_CARD):
                raise StripeError(400, "Use 4242424242424242 (success) or 4000000000000002 (decline).", param="card")
            pi_id = session["payment_intent"]
            pi = (
                self._find("payment_intent", pi_id)
                if pi_id
                else self._new_payment_intent(
                    session["amount_total"],
                    session["currency"],
                    dict(session["_payment_intent_metadata"]),
                    session["customer"],
                    receipt_email=session["customer_email"],
                )
            )
            session["payment_intent"] = pi["id"]
            succeed = card == SUCCESS_CARD
            self._charge_intent(pi, "pm_card_visa" if succeed else "pm_card_chargeDeclined", succeed, events)
            if succeed:
                session.update(
                    status="complete",
                    payment_status="paid",
                    url=None,
                    customer_details=self._payer(session),
                )
                self._event(events, "checkout.session.completed", session)
            return self._public(session), events

    def _test_pay(self, request: Request, id: str) -> Response:
        body = request.get_json(silent=True) or {}
        session, events = self._pay_session(id, str(body.get("card", SUCCESS_CARD)))
        deliveries = self._deliver_now(events)
        pi = None
        with self._lock:
            if session["payment_intent"]:
                pi = self._public(self._find("payment_intent", session["payment_intent"]))
        return self._json(
            200,
            {
                "checkout_session": session,
                "payment_intent": pi,
                "events": [e["id"] for e in events],
                "deliveries": [d.__dict__ for d in deliveries],
            },
        )

    def _payer(self, session: dict[str, Any]) -> dict[str, Any]:
        """Who pays, as Checkout shows and records it: the session's customer_email, else the email
        (and name) of the Customer the session was made for (a signed-in buyer). Call with the lock."""
        customer = self._state.objects.get("customer", {}).get(session.get("customer") or "")
        if session.get("customer_email") or customer is None:
            return {"email": session.get("customer_email"), "name": None}
        return {"email": customer.get("email"), "name": customer.get("name")}

    def _pay_page(self, request: Request, id: str, error: str | None = None, status: int = 200) -> Response:
        with self._lock:
            session = self._state.objects.get("checkout.session", {}).get(id)
            payer = self._payer(session) if session else {}
            session = self._public(session) if session else None
            items = session and self._state.objects["checkout.session"][id]["_line_items"]
        if session is None:
            return self._html(404, "Not found", "<p>No such checkout session.</p>")
        amount = f"{session['amount_total'] / 100:.2f} {session['currency'].upper()}"
        names = ", ".join(html.escape(i["description"]) for i in items or [])
        if session["status"] != "open":
            return self._html(
                200,
                "Checkout",
                f"<h1>{names}</h1><p>This checkout session is {html.escape(session['status'])}.</p>",
            )
        message = f'<p role="alert" style="color:#b00">{html.escape(error)}</p>' if error else ""
        cancel = f'<p><a href="{html.escape(session["cancel_url"])}">Cancel</a></p>' if session["cancel_url"] else ""
        body = f"""<h1>{names}</h1>
<p class="amount">{amount}</p>
<p>Paying as {html.escape(payer.get("email") or "guest")}</p>
{message}
<form method="post" action="/pay/{quote(id)}">
  <label>Card number <input name="card" value="{SUCCESS_CARD}" autocomplete="off"></label>
  <p><small>Test cards: {SUCCESS_CARD} succeeds, {DECLINE_CARD} is declined.</small></p>
  <button type="submit">Pay {amount}</button>
</form>
{cancel}"""
        return self._html(status, "Checkout", body)

    def _pay_form(self, request: Request, id: str) -> Response:
        try:
            session, events = self._pay_session(id, request.form.get("card", SUCCESS_CARD))
        except StripeError as exc:
            if exc.status == 404:
                return self._html(404, "Not found", "<p>No such checkout session.</p>")
            return self._pay_page(request, id, exc.body["message"], 400)
        self._deliver_now(events)
        if session["status"] == "complete":
            target = session["success_url"].replace("{CHECKOUT_SESSION_ID}", session["id"])
            return Response(status=303, headers={"Location": target})
        return self._pay_page(request, id, "Your card was declined.", 402)

    @staticmethod
    def _html(status: int, title: str, body: str) -> Response:
        page = (
            f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>'
            f'<body style="font-family:sans-serif;max-width:32rem;margin:3rem auto">{body}</body></html>'
        )
        return Response(page, status=status, mimetype="text/html")

    # ---- disputes ------------------------------------------------------------------------

    def _test_dispute(self, request: Request, id: str) -> Response:
        body = request.get_json(silent=True) or {}
        events: list[dict[str, Any]] = []
        with self._lock:
            charge = self._find("charge", id)
            if not charge["paid"]:
                raise StripeError(400, f"Charge {id} was not paid and cannot be disputed.")
            dispute = self._put(
                self._base(
                    "dispute",
                    "du_",
                    amount=charge["amount"] - charge["amount_refunded"],
                    charge=charge["id"],
                    currency=charge["currency"],
                    metadata={},
                    payment_intent=charge["payment_intent"],
                    reason=body.get("reason", "fraudulent"),
                    status="needs_response",
                )
            )
            charge["disputed"] = True
            self._event(events, "charge.dispute.created", dispute)
            result = self._public(dispute)
        deliveries = self._deliver_now(events)
        return self._json(200, {"dispute": result, "deliveries": [d.__dict__ for d in deliveries]})

    def _test_close_dispute(self, request: Request, id: str) -> Response:
        body = request.get_json(silent=True) or {}
        outcome = body.get("status", "lost")
        if outcome not in ("lost", "won"):
            raise StripeError(400, "status must be 'lost' or 'won'.", param="status")
        events: list[dict[str, Any]] = []
        with self._lock:
            dispute = self._find("dispute", id)
            dispute["status"] = outcome
            self._event(events, "charge.dispute.closed", dispute)
            result = self._public(dispute)
        deliveries = self._deliver_now(events)
        return self._json(200, {"dispute": result, "deliveries": [d.__dict__ for d in deliveries]})

    # ---- webhook delivery ----------------------------------------------------------------

    def _deliver_now(self, events: list[dict[str, Any]]) -> list[Delivery]:
        self.flush()  # earlier API-triggered events go first, as they were raised first
        out: list[Delivery] = []
        for event in events:
            out.extend(self._deliver(event))
        return out

    def _deliver_async(self, events: list[dict[str, Any]]) -> None:
        if events and self.webhook_url:
            with self._lock:
                self._pending = [f for f in self._pending if not f.done()]
                for event in events:
                    self._pending.append(self._executor.submit(self._deliver, event))

    def flush(self, timeout: float = 30.0) -> None:
        """Wait for queued deliveries to finish."""
        with self._lock:
            pending = list(self._pending)
        for future in pending:
            future.result(timeout=timeout)

    def _subscribed(self, event_type: str) -> bool:
        """Whether the webhook endpoint receives events of this type."""
        return bool(self.webhook_url) and (self.enabled_events is None or event_type in self.enabled_events)

    def _deliver(self, event: dict[str, Any]) -> list[Delivery]:
        if not self.webhook_url:
            return []
        if not self._subscribed(event["type"]):
            return []
        payload = json.dumps(event, indent=2)
        attempts: list[Delivery] = []
        for attempt, delay in enumerate((0.0, *self.retry_delays), start=1):
            if delay:
                time.sleep(delay)
            # Each attempt is signed afresh with its own timestamp, as Stripe does.
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            }
            if self.webhook_secret:
                headers["Stripe-Signature"] = sign_payload(payload, self.webhook_secret)
            status, error = None, None
            try:
                resp = self._http.post(
                    self.webhook_url, data=payload.encode(), headers=headers, timeout=self.delivery_timeout
                )
                status = resp.status_code
            except requests.RequestException as exc:
                error = type(exc).__name__
            record = Delivery(event["id"], event["type"], attempt, status, error, time.time())
            attempts.append(record)
            with self._lock:
                self._state.deliveries.append(record)
                if status is not None and 200 <= status < 300:
                    event["pending_webhooks"] = 0
            if status is not None and 200 <= status < 300:
                break
        return attempts

    def _test_deliveries(self, request: Request) -> Response:
        with self._lock:
            data = [d.__dict__ for d in self._state.deliveries]
        return self._json(200, {"object": "list", "data": data})

    def _test_flush(self, request: Request) -> Response:
        self.flush()
        return self._json(200, {"flushed": True})
