"""The content the platform ships with: tracks, projects, steps, deliverables, policies, retention.

Titles, hours, minutes, types and prices are the facts of ``shared/curriculum-facts.md``; the
descriptions are ours. The seed upserts this by natural key (see ``seed.py``); editing it here and
deploying changes the catalogue, and a step or deliverable removed here is deactivated, never
deleted.
"""

from __future__ import annotations

from typing import Any

from functions.migrate.dataset import DATASET_KEY

MB = 1024 * 1024
FILE_LIMIT = 50 * MB
PDF = ["application/pdf"]
IMAGES = ["image/png", "image/jpeg"]


def _doc(title: str, url: str) -> dict[str, str]:
    return {"title": title, "url": url}


def _step(number: int, title: str, minutes: int, description: str, *, optional: bool = False, resources=()):
    return {
        "number": number,
        "title": title,
        "estimated_minutes": minutes,
        "description": description,
        "is_optional": optional,
        "resources": list(resources),
    }


def _deliverable(number: int, title: str, kind: str, description: str, *, required: bool = True, types=()):
    return {
        "number": number,
        "title": title,
        "deliverable_type": kind,
        "description": description,
        "is_required": required,
        "accepted_content_types": list(types),
        "max_file_bytes": FILE_LIMIT if kind == "FILE" else None,
    }


TRACKS: list[dict[str, Any]] = [
    {
        "code": "DP",
        "name": "Data Professional",
        "description": (
            "Twelve weeks of hands-on analytics: clean raw data with Python, model it in PostgreSQL, "
            "automate pipelines with Prefect and publish dashboards in Superset, ending with a cloud "
            "warehouse capstone."
        ),
        "icon": "database",
        "duration_weeks": 12,
        "price_cents": 49900,
        "currency": "USD",
    },
    {
        "code": "FSD",
        "name": "Full-Stack Developer",
        "description": (
            "Twelve weeks of building and shipping web applications: a responsive React site, a "
            "Django REST e-commerce platform with Stripe, and a real-time app deployed with Docker, "
            "Terraform and CI/CD."
        ),
        "icon": "code",
        "duration_weeks": 12,
        "price_cents": 59900,
        "currency": "USD",
    },
]

INTERNAL = "Internal project"
CAPSTONE = "Capstone (external cloud)"

PROJECTS: list[dict[str, Any]] = [
    {
        "track": "DP",
        "number": 1,
        "title": "Business Analytics Dashboard",
        "subtitle": INTERNAL,
        "description": (
            "Turn a messy sales export into a clean PostgreSQL table, answer business questions with SQL "
            "and present them in a Superset dashboard with a one-page report."
        ),
        "project_type": "INTERNAL",
        "tech_stack": ["Python", "Pandas", "PostgreSQL", "SQL", "Apache Superset", "Jupyter Lab"],
        "tools": ["student_database", "jupyter", "superset"],
        "estimated_hours": 40,
        "dataset_key": DATASET_KEY,
        "steps": [
            _step(
                1,
                "Clean the raw CSV dataset in Python/Pandas",
                180,
                "Remove duplicates, handle missing values and normalise dates, categories and currency "
                "strings in the provided sales CSV.",
                resources=[
                    _doc(
                        "pandas: working with missing data",
                        "https://pandas.pydata.org/docs/user_guide/missing_data.html",
                    )
                ],
            ),
            _step(
                2,
                "Load the transformed data into PostgreSQL",
                120,
                "Design a table for the cleaned orders in your own schema and load the data into it.",
                resources=[_doc("PostgreSQL: COPY", "https://www.postgresql.org/docs/current/sql-copy.html")],
            ),
            _step(
                3,
                "Write SQL queries for KPIs and insights (joins, aggregations, window functions)",
                240,
                "Compute revenue, order volume, top products and month-over-month trends with SQL.",
                resources=[
                    _doc(
                        "PostgreSQL tutorial: window functions",
                        "https://www.postgresql.org/docs/current/tutorial-window.html",
                    )
                ],
            ),
            _step(
                4,
                "Connect Superset to the PostgreSQL schema",
                90,
                "Add your schema as a Superset dataset using the database connection provisioned for you.",
            ),
            _step(
                5,
                "Build an interactive dashboard with filters and charts",
                300,
                "Build charts for your KPIs and combine them into a dashboard with region, category and date filters.",
            ),
            _step(
                6,
                "Summarise findings in a one-page insights report",
                120,
                "Write up the three or four findings a manager should act on, with the numbers behind them.",
            ),
        ],
        "deliverables": [
            _deliverable(1, "Superset dashboard URL", "LINK", "The link to your published Superset dashboard."),
            _deliverable(
                2,
                "SQL queries repository",
                "GITHUB",
                "A GitHub repository with the SQL for the table and every KPI query.",
            ),
            _deliverable(3, "PDF insights report", "FILE", "Your one-page insights report as a PDF.", types=PDF),
            _deliverable(
                4,
                "Python cleaning script",
                "GITHUB",
                "The script or notebook that cleans the raw CSV, if you want feedback on it.",
                required=False,
            ),
        ],
    },
    {
        "track": "DP",
        "number": 2,
        "title": "Automated ETL Pipeline",
        "subtitle": INTERNAL,
        "description": (
            "Build a daily pipeline that pulls data from a public API, transforms it and loads it into "
            "PostgreSQL, orchestrated and monitored with Prefect and reported by email."
        ),
        "project_type": "INTERNAL",
        "tech_stack": ["Python", "Pandas", "Requests", "PostgreSQL", "Prefect", "Email API"],
        "tools": ["student_database", "prefect", "jupyter"],
        "estimated_hours": 45,
        "dataset_key": None,
        "steps": [
            _step(
                1,
                "Pick a public API (weather, finance, health)",
                60,
                "Choose a free public API with daily data and note its limits and authentication.",
            ),
            _step(
                2,
                "Pull daily data from the API with Requests",
                180,
                "Write a function that fetches one day of data, with timeouts and retries on failure.",
                resources=[_doc("Requests documentation", "https://requests.readthedocs.io/en/latest/")],
            ),
            _step(
                3,
                "Transform the data with Pandas",
                150,
                "Reshape the API response into tidy rows with typed columns and derived fields.",
            ),
            _step(
                4,
                "Load into a new table in the PostgreSQL schema",
                120,
                "Create the target table and load each day's rows so that a re-run does not duplicate them.",
            ),
            _step(
                5,
                "Orchestrate with Prefect (schedule + monitoring)",
                240,
                "Wrap the steps in a Prefect flow, schedule it daily and watch its runs in the Prefect UI.",
                resources=[_doc("Prefect documentation", "https://docs.prefect.io/")],
            ),
            _step(
                6,
                "Add a daily email report summarising KPIs",
                150,
                "Send a short daily email with the key numbers from the latest load.",
            ),
        ],
        "deliverables": [
            _deliverable(1, "Python ETL script repository", "GITHUB", "A GitHub repository with the pipeline code."),
            _deliverable(
                2,
                "Prefect flow export or screenshot",
                "FILE",
                "An export of your flow or a screenshot of its scheduled runs in Prefect.",
                types=[*IMAGES, "application/pdf", "application/json"],
            ),
            _deliverable(
                3,
                "PostgreSQL table with daily updated data",
                "TEXT",
                "The schema-qualified name of the table your pipeline updates, and what it holds.",
            ),
            _deliverable(
                4,
                "Example email report screenshot",
                "FILE",
                "A screenshot of one daily report email.",
                types=[*IMAGES, "application/pdf"],
            ),
        ],
    },
    {
        "track": "DP",
        "number": 3,
        "title": "End-to-End Analytics Solution",
        "subtitle": CAPSTONE,
        "description": (
            "Combine an API and PostgreSQL into a cloud warehouse (BigQuery or Redshift) on your own cloud "
            "account, and deliver an executive dashboard with a written case study."
        ),
        "project_type": "CAPSTONE",
        "tech_stack": ["BigQuery or Redshift", "PostgreSQL", "Python", "Advanced SQL", "Apache Superset", "Cloud SDK"],
        "tools": [],
        "estimated_hours": 60,
        "dataset_key": None,
        "steps": [
            _step(
                1,
                "Connect multiple sources (an API + PostgreSQL)",
                120,
                "Extract data from a public API and from your PostgreSQL schema into one working dataset.",
            ),
            _step(
                2,
                "Load the combined dataset into BigQuery/Redshift",
                180,
                "Create the warehouse tables in your cloud account and load the combined data.",
                resources=[_doc("BigQuery: loading data", "https://cloud.google.com/bigquery/docs/loading-data")],
            ),
            _step(
                3,
                "Write optimised SQL (window functions, partitioning)",
                240,
                "Write the analysis queries, using partitioning and window functions to keep them fast.",
            ),
            _step(
                4,
                "Build an executive Superset dashboard on the cloud warehouse",
                300,
                "Connect Superset to the warehouse and build a dashboard an executive can read in a minute.",
            ),
            _step(
                5,
                "Write a case study with business recommendations",
                180,
                "Explain the problem, your method, what the data shows and what the business should do.",
            ),
            _step(
                6,
                "Deploy the live dashboard on cloud infrastructure",
                120,
                "Make the dashboard reachable at a public URL for review.",
            ),
        ],
        "deliverables": [
            _deliverable(1, "Cloud-hosted dashboard URL", "LINK", "The public URL of your live dashboard."),
            _deliverable(2, "SQL scripts repository", "GITHUB", "A GitHub repository with your warehouse SQL."),
            _deliverable(3, "PDF case study report", "FILE", "Your case study as a PDF.", types=PDF),
        ],
    },
    {
        "track": "FSD",
        "number": 1,
        "title": "Responsive Portfolio Website",
        "subtitle": INTERNAL,
        "description": (
            "Build and deploy a responsive personal portfolio in React and Tailwind CSS, written in your "
            "browser workspace and published with the Netlify CLI."
        ),
        "project_type": "INTERNAL",
        "tech_stack": ["HTML5", "CSS3", "Tailwind CSS", "React", "Netlify CLI"],
        "tools": ["workspace"],
        "estimated_hours": 30,
        "dataset_key": None,
        "steps": [
            _step(
                1,
                "Build the portfolio structure (Hero, About, Projects, Contact)",
                240,
                "Create the React components for each section with real content about you.",
            ),
            _step(
                2,
                "Style with Tailwind CSS for responsiveness",
                180,
                "Style the site so it reads well on phones, tablets and desktops.",
                resources=[_doc("Tailwind CSS: responsive design", "https://tailwindcss.com/docs/responsive-design")],
            ),
            _step(
                3,
                "Deploy with the Netlify CLI",
                90,
                "Build the site and deploy it to Netlify from your workspace.",
                resources=[_doc("Netlify CLI: get started", "https://docs.netlify.com/cli/get-started/")],
            ),
            _step(
                4,
                "Add a custom domain and form handling (optional step)",
                60,
                "Point a domain you own at the site and make the contact form deliver messages.",
                optional=True,
            ),
        ],
        "deliverables": [
            _deliverable(1, "Live Netlify URL", "LINK", "The public URL of your deployed portfolio."),
            _deliverable(
                2,
                "GitHub repository with the React + Tailwind code",
                "GITHUB",
                "The repository the site is built from.",
            ),
        ],
    },
    {
        "track": "FSD",
        "number": 2,
        "title": "E-Commerce Platform",
        "subtitle": INTERNAL,
        "description": (
            "Build a small online shop: a React storefront and cart on a Django REST API backed by "
            "PostgreSQL, with Stripe test-mode checkout, accounts and tests."
        ),
        "project_type": "INTERNAL",
        "tech_stack": ["React", "Django REST Framework", "PostgreSQL", "Stripe (test mode)", "Pytest"],
        "tools": ["workspace"],
        "estimated_hours": 50,
        "dataset_key": None,
        "steps": [
            _step(
                1,
                "React product catalogue and shopping cart",
                300,
                "List products, show a product page and keep a cart that survives a page reload.",
            ),
            _step(
                2,
                "Django REST API for products, users, orders",
                360,
                "Expose products, users and orders through a Django REST Framework API.",
                resources=[
                    _doc(
                        "Django REST Framework quickstart", "https://www.django-rest-framework.org/tutorial/quickstart/"
                    )
                ],
            ),
            _step(3, "PostgreSQL persistence", 120, "Store the shop's data in PostgreSQL with migrations."),
            _step(
                4,
                "Stripe test-mode checkout",
                240,
                "Take payments with Stripe Checkout in test mode.",
                resources=[_doc("Stripe: testing", "https://docs.stripe.com/testing")],
            ),
            _step(5, "Authentication and order history", 180, "Let customers sign in and see their past orders."),
            _step(
                6,
                "Backend unit tests with Pytest",
                180,
                "Cover the API's main paths and error cases with Pytest.",
                resources=[_doc("pytest documentation", "https://docs.pytest.org/en/stable/")],
            ),
        ],
        "deliverables": [
            _deliverable(1, "Live demo URL", "LINK", "The public URL of your running shop."),
            _deliverable(
                2,
                "Repository with frontend + backend",
                "GITHUB",
                "The repository with the React frontend and the Django backend.",
            ),
            _deliverable(
                3,
                "Proof of Stripe test payments",
                "FILE",
                "A screenshot or PDF of completed test payments in the Stripe dashboard.",
                types=[*IMAGES, "application/pdf"],
            ),
        ],
    },
    {
        "track": "FSD",
        "number": 3,
        "title": "Social Dashboard + DevOps",
        "subtitle": CAPSTONE,
        "description": (
            "Build a real-time social app with React and Django Channels, then containerise it, provision "
            "its infrastructure with Terraform and deploy it through a CI/CD pipeline on your own cloud account."
        ),
        "project_type": "CAPSTONE",
        "tech_stack": [
            "React",
            "Django Channels",
            "PostgreSQL",
            "Redis",
            "Docker",
            "Terraform",
            "GitHub Actions",
            "Cloud hosting",
        ],
        "tools": [],
        "estimated_hours": 70,
        "dataset_key": None,
        "steps": [
            _step(
                1,
                "Social app frontend (posts, comments, likes) in React",
                360,
                "Build the feed, post, comment and like interactions in React.",
            ),
            _step(
                2,
                "Real-time notifications with Django Channels + Redis",
                420,
                "Push notifications to connected users over WebSockets using Channels with a Redis layer.",
                resources=[_doc("Django Channels documentation", "https://channels.readthedocs.io/en/latest/")],
            ),
            _step(
                3,
                "Containerise with Docker",
                180,
                "Write Dockerfiles and a compose file for every service.",
                resources=[_doc("Docker: get started", "https://docs.docker.com/get-started/")],
            ),
            _step(
                4,
                "Provision cloud infrastructure with Terraform",
                240,
                "Describe the app's cloud resources in Terraform and apply them.",
                resources=[
                    _doc(
                        "Terraform: get started on AWS",
                        "https://developer.hashicorp.com/terraform/tutorials/aws-get-started",
                    )
                ],
            ),
            _step(
                5,
                "CI/CD pipeline with GitHub Actions",
                240,
                "Test, build and deploy on every push to the main branch.",
                resources=[_doc("GitHub Actions documentation", "https://docs.github.com/en/actions")],
            ),
            _step(6, "Deploy live to the cloud (public URL)", 180, "Ship it and make it reachable at a public URL."),
        ],
        "deliverables": [
            _deliverable(1, "Cloud-deployed app URL", "LINK", "The public URL of your deployed app."),
            _deliverable(
                2,
                "Repository with Docker + Terraform + CI/CD",
                "GITHUB",
                "The repository with the app, its Dockerfiles, Terraform and workflow files.",
            ),
            _deliverable(
                3,
                "Demo video of real-time notifications",
                "FILE",
                "A short screen recording showing a notification arriving in real time.",
                types=["video/mp4", "video/webm", "video/quicktime"],
            ),
        ],
    },
]

PRIVACY_POLICY: dict[str, str] = {
    "version": "1.0",
    "summary": (
        "We keep what we need to run your course: your account, your consents, references to your "
        "payments, your work and how you use the tools we give you. AWS hosts it and Stripe takes "
        "payments. You can export or delete your data at any time."
    ),
    "content": """ApraNova privacy policy, version 1.0

What we collect
- Account: your name, e-mail address and role, and the track you enrol in. Your password is held
  by our identity provider (Amazon Cognito); we never see or store it.
- Consent: which version of this policy and of the terms you accepted, when, and the IP address
  and browser (user agent) you accepted them from.
- Payments: the track, amount, currency, status and Stripe's references for each payment and
  refund. Card details go straight to Stripe; we never receive them.
- Your work: the progress you record, the links, text and files you submit, and trainers' reviews.
- Tool usage: the accounts, database schema and workspace created for you, and when you use them.
- Security records: sign-ins and sensitive actions are written to an audit log with time, IP
  address and user agent.

Why
To provide the course you paid for, to take and refund payments, to keep the service secure, and
to meet legal obligations (payment records are kept for 7 years).

Who processes it
Amazon Web Services (hosting, storage, e-mail and sign-in) and Stripe (payments). We do not sell
your data or use it for advertising.

How long
Account data is erased 30 days after you ask us to delete your account. Payment records are kept
for 7 years with your name and e-mail removed. Submissions are kept for 2 years, security logs for
1 year, data exports for 7 days.

Your rights
You can see and download everything we hold about you (Settings > Export my data), correct your
profile, withdraw consent and have your account deleted (Settings > Delete account; you can cancel
within 30 days). You can also complain to your data-protection authority.

Contact
privacy@apranova.com
""",
}

TERMS_OF_SERVICE: dict[str, str] = {
    "version": "1.0",
    "summary": (
        "You pay once per track and get its projects, tools and trainer reviews. Use the tools for "
        "your coursework only, submit your own work, and keep your credentials to yourself."
    ),
    "content": """ApraNova terms of service, version 1.0

1. The service. Enrolling in a track gives you its projects in order, the tools the track
   provides (for example a personal database schema or a browser workspace) and reviews of your
   submissions by a trainer. A project unlocks when a trainer approves the one before it.
2. Payment. The price of a track is shown before you pay and charged once through Stripe. You may
   request a refund within 7 days of payment if you have completed less than 20% of the track's
   steps; an administrator decides each request.
3. Your account. Keep your password and the credentials of your tools to yourself. We may suspend
   an account that is used to attack the service or other students.
4. Your work. You keep the rights to what you submit. You give us permission to store it and show
   it to your trainer for review. Submit only work you are allowed to share.
5. Acceptable use. The tools are for coursework: no mining, scanning, spam or hosting of unrelated
   services. Resources idle for long periods may be stopped.
6. Ending. You can delete your account at any time; see the privacy policy for what is kept.
7. Changes. When these terms change we publish a new version and ask you to accept it before you
   continue.

Contact: support@apranova.com
""",
}

RETENTION_POLICIES: list[dict[str, Any]] = [
    {
        "resource_type": "LOGS",
        "retention_days": 90,
        "legal_minimum_days": None,
        "legal_requirement": False,
        "description": "Application logs and processed Stripe event records.",
    },
    {
        "resource_type": "AUDIT_LOGS",
        "retention_days": 365,
        "legal_minimum_days": None,
        "legal_requirement": False,
        "description": "Audit trail of sensitive actions.",
    },
    {
        "resource_type": "USER_DATA",
        "retention_days": 30,
        "legal_minimum_days": None,
        "legal_requirement": False,
        "description": "Grace period between an account deletion request and the purge of the account's data "
        "(at most 90 days).",
    },
    {
        "resource_type": "PAYMENT_DATA",
        "retention_days": 2555,
        "legal_minimum_days": 2555,
        "legal_requirement": True,
        "description": "Payment and refund records, kept 7 years for tax and accounting law (anonymised on purge).",
    },
    {
        "resource_type": "SUBMISSIONS",
        "retention_days": 730,
        "legal_minimum_days": None,
        "legal_requirement": False,
        "description": "Submitted work and uploaded files.",
    },
    {
        "resource_type": "EXPORTS",
        "retention_days": 7,
        "legal_minimum_days": None,
        "legal_requirement": False,
        "description": "Personal data export archives.",
    },
    {
        "resource_type": "ABANDONED_CHECKOUTS",
        "retention_days": 30,
        "legal_minimum_days": None,
        "legal_requirement": False,
        "description": "Pay-first checkouts never paid and never linked to an account: the buyer's email and name "
        "and their consent record, kept this long after the last change (at least 30 days: a delayed payment "
        "can still complete).",
    },
]
