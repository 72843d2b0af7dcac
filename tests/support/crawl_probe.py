"""Run inside a fresh app process: demo + one inline load, then every linked page as admin.

Prints one JSON line: pages visited, the status counts and every page that answered 5xx (with
the exception's last line). Used by tests/web/test_sqlite_crawl.py on the default (SQLite) app
database, which the rest of the suite (on PostgreSQL) does not exercise.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter, deque
from urllib.parse import urljoin, urlsplit

import django

django.setup()

import io  # noqa: E402

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402

from mappings.models import Plan  # noqa: E402

HREF = re.compile(r'href="([^"#]+)"')
SKIP = ("/static/", "/media/", "/accounts/logout", "/admin/", "/api/schema")
LIMIT = int(sys.argv[1]) if len(sys.argv) > 1 else 400


def main() -> None:
    call_command("load_demo", rows=200, verbosity=0)
    plan = Plan.objects.order_by("pk").first()
    call_command("run_plan", plan.slug, inline=True, user="admin", stdout=io.StringIO())
    client = Client(raise_request_exception=False)
    client.force_login(get_user_model().objects.get(username="admin"))
    seen: set[str] = set()
    queue: deque[str] = deque(["/"])
    statuses: Counter[int] = Counter()
    errors: list[dict] = []
    while queue and len(seen) < LIMIT:
        url = queue.popleft()
        if url in seen:
            continue
        seen.add(url)
        response = client.get(url)
        statuses[response.status_code] += 1
        if response.status_code >= 500:
            errors.append({"url": url, "status": response.status_code})
            continue
        if "text/html" not in response.get("Content-Type", ""):
            continue
        for href in HREF.findall(response.content.decode("utf-8", "replace")):
            link = urljoin(url, href.replace("&amp;", "&"))
            parts = urlsplit(link)
            if parts.netloc or not parts.path.startswith("/") or parts.path.startswith(SKIP):
                continue
            if parts.query and "page=" not in parts.query:
                link = parts.path  # one visit per page, not per filter combination
            if link not in seen:
                queue.append(link)
    print(json.dumps({"visited": len(seen), "statuses": dict(statuses), "errors": errors}))


if __name__ == "__main__":
    main()
