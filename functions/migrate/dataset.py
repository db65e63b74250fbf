"""The DP project 1 dataset: a raw, deliberately messy sales CSV the student cleans.

Generated from a seed with the standard library only, so every deploy produces the same bytes and
``upload_dataset`` can skip the upload when the object in S3 already has this content. The mess
is the exercise: exact duplicate rows, blanks, three-plus date formats, inconsistent casing and
whitespace in categorical columns, currency strings such as ``"$1,234.50"``, percentages mixed
with fractions, and a few negative or absurd quantities.
"""

from __future__ import annotations

import csv
import hashlib
import io
import random
from datetime import date, timedelta
from typing import Any

DATASET_KEY = "datasets/dp/project-1/sales_raw.csv"
BASE_ROWS = 2940
DUPLICATE_ROWS = 60

COLUMNS = [
    "order_id",
    "order_date",
    "customer_id",
    "customer_name",
    "region",
    "city",
    "category",
    "product",
    "quantity",
    "unit_price",
    "discount",
    "total",
    "payment_method",
    "order_status",
]

REGIONS = {
    "North": ["Chicago", "Minneapolis", "Detroit", "Milwaukee"],
    "South": ["Atlanta", "Houston", "Miami", "Nashville"],
    "East": ["New York", "Boston", "Philadelphia", "Baltimore"],
    "West": ["Seattle", "San Francisco", "Los Angeles", "Denver"],
    "Central": ["Kansas City", "St. Louis", "Omaha", "Des Moines"],
}
PRODUCTS = {
    "Electronics": [
        ("Wireless Mouse", 24.99),
        ("USB-C Hub", 49.0),
        ("27in Monitor", 279.0),
        ("Laptop Stand", 39.5),
        ("Noise-Cancelling Headphones", 199.99),
        ("Mechanical Keyboard", 89.0),
        ("Webcam HD", 64.95),
    ],
    "Furniture": [
        ("Office Chair", 189.0),
        ("Standing Desk", 549.0),
        ("Bookshelf", 129.99),
        ("Filing Cabinet", 159.0),
        ("Desk Lamp", 34.5),
    ],
    "Office Supplies": [
        ("Printer Paper (500)", 8.99),
        ("Ballpoint Pens (12)", 5.49),
        ("Stapler", 12.0),
        ("Sticky Notes (6)", 6.75),
        ("Whiteboard Markers (4)", 7.99),
        ("Binder Clips (24)", 4.25),
    ],
    "Clothing": [
        ("Rain Jacket", 89.0),
        ("Running Shoes", 119.95),
        ("Wool Socks (3)", 18.0),
        ("Hoodie", 45.0),
        ("Baseball Cap", 19.99),
    ],
    "Home & Kitchen": [
        ("Coffee Maker", 79.99),
        ("Chef's Knife", 59.0),
        ("Blender", 99.0),
        ("Cutting Board", 24.0),
        ("Water Bottle", 22.5),
    ],
}
PAYMENT_METHODS = ["Credit Card", "Debit Card", "PayPal", "Bank Transfer", "Gift Card"]
STATUSES = ["Completed"] * 16 + ["Returned", "Cancelled", "Pending"]
FIRST_NAMES = [
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Carlos",
    "Karen",
    "Daniel",
    "Nancy",
    "Priya",
    "Lisa",
    "Wei",
    "Betty",
    "Ahmed",
    "Sandra",
    "Kenji",
    "Ashley",
    "Olga",
    "Emily",
]
LAST_NAMES = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Patel",
    "Nguyen",
    "Kim",
    "Chen",
    "Okafor",
    "Novak",
    "Schmidt",
    "Rossi",
    "Tanaka",
]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
FIRST_DAY = date(2023, 1, 1)
DAYS = 730


def _messy_case(rng: random.Random, value: str) -> str:
    """Mostly the clean value; sometimes lower/upper case or stray whitespace."""
    roll = rng.random()
    if roll < 0.78:
        return value
    if roll < 0.85:
        return value.lower()
    if roll < 0.90:
        return value.upper()
    if roll < 0.95:
        return f" {value}"
    return f"{value}  "


def _date(rng: random.Random, day: date) -> str:
    roll = rng.random()
    if roll < 0.015:
        return ""
    if roll < 0.55:
        return day.isoformat()  # 2024-03-12
    if roll < 0.78:
        return f"{day.month:02d}/{day.day:02d}/{day.year}"  # 03/12/2024
    if roll < 0.93:
        return f"{day.day} {MONTHS[day.month - 1]} {day.year}"  # 12 Mar 2024 (not strftime: locale-free)
    return f"{day.isoformat()}T{rng.randrange(8, 20):02d}:{rng.randrange(60):02d}:00"  # 2024-03-12T14:05:00


def _money(rng: random.Random, amount: float) -> str:
    roll = rng.random()
    if roll < 0.6:
        return f"{amount:.2f}"
    if roll < 0.85:
        return f"${amount:,.2f}"  # "$1,234.50"
    if roll < 0.95:
        return f"{amount:g}"  # 1234.5
    return f"USD {amount:.2f}"


def _quantity(rng: random.Random) -> tuple[int | None, str]:
    roll = rng.random()
    if roll < 0.01:
        return None, ""
    if roll < 0.017:
        value = -rng.randint(1, 5)  # returns keyed in as negative sales
    elif roll < 0.021:
        value = rng.choice([250, 500, 999, 1200, 9999])  # fat-fingered outliers
    else:
        value = rng.choices([1, 2, 3, 4, 5, 6, 8, 10], weights=[40, 22, 12, 8, 6, 4, 4, 4])[0]
    return value, str(value)


def _row(rng: random.Random, number: int, customers: list[tuple[str, str, str, str]]) -> list[str]:
    day = FIRST_DAY + timedelta(days=rng.randrange(DAYS))
    customer_id, name, region, city = rng.choice(customers)
    category = rng.choice(list(PRODUCTS))
    product, price = rng.choice(PRODUCTS[category])
    quantity, quantity_text = _quantity(rng)
    discount = rng.choices([0.0, 0.05, 0.1, 0.15, 0.2], weights=[60, 12, 15, 8, 5])[0]
    discount_roll = rng.random()
    if discount_roll < 0.03:
        discount_text = ""
    elif discount_roll < 0.25:
        discount_text = f"{discount:.0%}"  # 10%
    else:
        discount_text = f"{discount:g}"  # 0.1
    total = "" if quantity is None else _money(rng, round(quantity * price * (1 - discount), 2))
    if rng.random() < 0.02:
        total = ""
    unit_price = "" if rng.random() < 0.02 else _money(rng, price)
    customer_name = "" if rng.random() < 0.03 else name
    if customer_name and rng.random() < 0.06:
        customer_name = customer_name.lower() if rng.random() < 0.5 else f"{customer_name} "
    return [
        f"ORD-{100000 + number}",
        _date(rng, day),
        customer_id,
        customer_name,
        "" if rng.random() < 0.025 else _messy_case(rng, region),
        city,
        _messy_case(rng, category),
        product,
        quantity_text,
        unit_price,
        discount_text,
        total,
        "" if rng.random() < 0.02 else _messy_case(rng, rng.choice(PAYMENT_METHODS)),
        _messy_case(rng, rng.choice(STATUSES)),
    ]


def generate_rows(seed: int = 2024) -> list[list[str]]:
    rng = random.Random(seed)  # noqa: S311 - a teaching dataset, not cryptography
    customers = []
    for index in range(600):
        region = rng.choice(list(REGIONS))
        customers.append(
            (
                f"C{10000 + index}",
                f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
                region,
                rng.choice(REGIONS[region]),
            )
        )
    rows = [_row(rng, number, customers) for number in range(BASE_ROWS)]
    # Exact duplicates (double-submitted orders, a re-run export), scattered through the file.
    for _ in range(DUPLICATE_ROWS):
        source = rows[rng.randrange(len(rows))]
        rows.insert(rng.randrange(len(rows) + 1), list(source))
    return rows


def generate_csv(seed: int = 2024) -> bytes:
    """The dataset's bytes: a header and ``BASE_ROWS + DUPLICATE_ROWS`` rows, identical for a seed."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(generate_rows(seed))
    return buffer.getvalue().encode("utf-8")


def upload_dataset(s3_client: Any, bucket: str) -> str:
    """Put the dataset at ``DATASET_KEY`` unless the object there already has the same content.

    The content's sha256 travels in the object's metadata; a matching digest means no put (and no
    new object version). Returns the key.
    """
    body = generate_csv()
    digest = hashlib.sha256(body).hexdigest()
    try:
        head = s3_client.head_object(Bucket=bucket, Key=DATASET_KEY)
    except s3_client.exceptions.ClientError as error:
        if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
            raise
    else:
        if head.get("Metadata", {}).get("sha256") == digest:
            return DATASET_KEY
    s3_client.put_object(
        Bucket=bucket,
        Key=DATASET_KEY,
        Body=body,
        ContentType="text/csv; charset=utf-8",
        Metadata={"sha256": digest},
    )
    return DATASET_KEY
