"""The pager: which rows a page shows and where its links go, keeping the page's filters."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from hypothesis import given
from hypothesis import strategies as st

from erp_core.web.paging import Paging


def test_first_page_of_more_rows_links_only_forward() -> None:
    paging = Paging(number=1, per_page=3, url="/lots?q=A%26B&status=released")
    shown = paging.cut(list(range(paging.limit)))
    assert list(shown.rows) == [0, 1, 2]
    assert (shown.first, shown.last) == (1, 3)
    assert shown.previous_url is None
    assert shown.next_url is not None
    parts = urlsplit(shown.next_url)
    assert parts.path == "/lots"
    assert parse_qs(parts.query) == {"q": ["A&B"], "status": ["released"], "page": ["2"]}


def test_last_page_links_back_to_a_url_without_page_one() -> None:
    paging = Paging(number=2, per_page=3, url="/lots?page=2&status=quarantine")
    shown = paging.cut(["d"])
    assert list(shown.rows) == ["d"]
    assert (shown.first, shown.last) == (4, 4)
    assert shown.next_url is None
    assert shown.previous_url == "/lots?status=quarantine"


def test_a_page_past_the_end_shows_nothing() -> None:
    shown = Paging(number=9, per_page=3, url="/lots?page=9").cut([])
    assert (list(shown.rows), shown.first, shown.last, shown.next_url) == ([], 0, 0, None)


@given(total=st.integers(0, 400), per_page=st.integers(1, 60))
def test_walking_the_pages_shows_every_row_once(total: int, per_page: int) -> None:
    rows = list(range(total))
    seen: list[int] = []
    url: str | None = "/x?a=1"
    pages = 0
    while url is not None:
        number = int(parse_qs(urlsplit(url).query).get("page", ["1"])[0])
        paging = Paging(number=number, per_page=per_page, url=url)
        shown = paging.cut(rows[paging.offset : paging.offset + paging.limit])
        seen.extend(shown.rows)
        url = shown.next_url
        pages += 1
    assert seen == rows
    assert pages == max(1, -(-total // per_page))
