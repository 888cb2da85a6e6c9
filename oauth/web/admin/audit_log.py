"""The admin page of the audit log: filters and pages."""

from __future__ import annotations

import dataclasses

from flask import render_template, request

from oauth import audit
from oauth.pagination import page_number


def audit_list():
    filters = audit.filters_from(request.args)
    page = audit.search(filters, page_number(request.args.get("page")))
    emails, names = audit.labels(page.items)
    return render_template(
        "admin/audit.html",
        page=page,
        filters=filters,
        event_types=audit.event_types(),
        emails=emails,
        names=names,
        query={k: v for k, v in dataclasses.asdict(filters).items() if v},
    )
