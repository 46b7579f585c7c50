"""Pagination of every list page: one query parameter, one way to cut, one pager.

A list page asks its service for ``paging.limit`` rows from ``paging.offset`` (one row
more than it shows, so it knows whether a next page exists without counting the table),
then ``paging.cut(rows)`` gives the rows to show and the pager: links to the previous
and next page that keep the page's other query parameters (filters, search). Templates
show it with ``{% from "web/_pager.html" import pager %}{{ pager(shown) }}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query, Request
from starlette.datastructures import URL

T = TypeVar("T")
PER_PAGE = 50
MAX_PAGE = 100_000


@dataclass(frozen=True, slots=True)
class Shown(Generic[T]):
    """One page of a list: its rows, and where the pager links."""

    rows: Sequence[T]
    number: int
    first: int  # 1-based position of the first row shown; 0 when there is none
    last: int
    previous_url: str | None
    next_url: str | None


@dataclass(frozen=True, slots=True)
class Paging:
    """Page ``number`` (1-based) of ``per_page`` rows, as the request asked for it."""

    number: int
    per_page: int
    url: str  # the request's path and query, to build the pager's links from

    @property
    def offset(self) -> int:
        """Rows to skip."""
        return (self.number - 1) * self.per_page

    @property
    def limit(self) -> int:
        """Rows to ask for: one more than shown, to know if there is a next page."""
        return self.per_page + 1

    def cut(self, rows: Sequence[T]) -> Shown[T]:
        """The rows to show of ``rows`` (fetched with ``offset`` and ``limit``) and the pager."""
        shown = rows[: self.per_page]
        more = len(rows) > self.per_page
        return Shown(
            rows=shown,
            number=self.number,
            first=self.offset + 1 if shown else 0,
            last=self.offset + len(shown) if shown else 0,
            previous_url=self._link(self.number - 1) if self.number > 1 else None,
            next_url=self._link(self.number + 1) if more else None,
        )

    def _link(self, number: int) -> str:
        url = URL(self.url)
        link = url.remove_query_params("page")
        if number > 1:
            link = link.include_query_params(page=number)
        return str(link.path) + (f"?{link.query}" if link.query else "")


def paging(
    request: Request,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page of the list, from 1")] = 1,
) -> Paging:
    """The ``?page=N`` of a list page (``PER_PAGE`` rows each)."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return Paging(number=page, per_page=PER_PAGE, url=target)


PageParam = Annotated[Paging, Depends(paging)]
