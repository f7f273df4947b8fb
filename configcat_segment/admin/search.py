"""Admin searches, bounded: a search the database would refuse is not run at all.

SQLite refuses a ``LIKE`` pattern over 50,000 bytes ("pattern too complex"), a 500 for any
staff user who can open a list. Nothing the app lets anyone search for is longer than 255
characters. (Django's own search form already refuses NUL characters, which PostgreSQL
would refuse.)
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.formats import number_format
from django.utils.translation import gettext as _

MAX_SEARCH_LENGTH = 255


def search_problem(term: str) -> str | None:
    """Why ``term`` is not searched for, or None."""
    if len(term) > MAX_SEARCH_LENGTH:
        return _(
            "Search for at most %(max)s characters (this was %(length)s): nothing was searched."
        ) % {"max": MAX_SEARCH_LENGTH, "length": number_format(len(term), force_grouping=True)}
    return None


class BoundedSearchAdmin(admin.ModelAdmin):
    """A ``ModelAdmin`` whose search refuses, with a message, what it cannot run."""

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        problem = search_problem(search_term)
        if problem:
            self.message_user(request, problem, messages.ERROR)
            return queryset.none(), False
        return super().get_search_results(request, queryset, search_term)
