"""Page-numbered reads: Prefect 3.1.0's `POST /flows/paginate`, `/flow_runs/paginate`
and `/deployments/paginate` routes. Each is the read of its models function at offset
(page - 1) * limit plus the count under the same filters, taken under one lock so the
two agree.

Functions take the Engine; the Engine's methods of the same names are the public API.
"""
from __future__ import annotations

from typing import Any, Callable

import attrs

from .errors import ValidationError, shown

__all__ = ["PaginationResponse", "DEFAULT_PAGE_LIMIT", "paginate"]

# Prefect's PREFECT_API_DEFAULT_LIMIT: the default and the largest page.
DEFAULT_PAGE_LIMIT = 200


@attrs.frozen(slots=True)
class PaginationResponse:
    """One page (Prefect's Flow/FlowRun/DeploymentPaginationResponse): its `results`,
    the `count` of matches over all pages, the page size `limit`, the number of
    `pages` (ceil(count / limit)) and this `page`, numbered from 1."""

    results: list[Any]
    count: int
    limit: int
    pages: int
    page: int


def _checked(limit: Any, page: Any) -> tuple[int, int]:
    if limit is None:
        limit = DEFAULT_PAGE_LIMIT
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise ValidationError(f"limit must be an integer or None, got {type(limit).__name__} {shown(limit)}")
    if limit < 0:
        raise ValidationError("Invalid limit: must be greater than or equal to 0.")
    if limit > DEFAULT_PAGE_LIMIT:
        raise ValidationError(f"Invalid limit: must be less than or equal to {DEFAULT_PAGE_LIMIT}.")
    if limit == 0:
        # Prefect divides by it (a 500); a page of nothing has no page count.
        raise ValidationError("limit must be at least 1 to paginate, got 0")
    if isinstance(page, bool) or not isinstance(page, int):
        raise ValidationError(f"page must be an integer, got {type(page).__name__} {shown(page)}")
    if page < 1:
        raise ValidationError(f"page must be >= 1, got {page}")
    return limit, page


def paginate(read_page: Callable[[int, int], tuple[list, int]], limit: Any, page: Any) -> PaginationResponse:
    """Page `page` of `limit` results: `read_page(offset, limit)` gives the window
    and the count of all matches (one selection serves both). ValidationError for a
    limit outside 1..200 (None: 200) or a page below 1. The cost of `read_page`."""
    limit, page = _checked(limit, page)
    results, total = read_page((page - 1) * limit, limit)
    return PaginationResponse(results=results, count=total, limit=limit, pages=(total + limit - 1) // limit,
                              page=page)
