"""Every list paginates: the lots list shows 50 rows a page and its pager keeps the filters."""

from __future__ import annotations

import re

import psycopg

from erp_core.audit.service import set_actor
from erp_core.web.paging import PER_PAGE
from tests.integration.test_web_session import Web, password, web  # noqa: F401 - fixture
from tests.integration.web_helpers import sign_in

_LOT_LINK = re.compile(r'<a href="/lots/(\d+)">')
_NEXT = re.compile(r'<a href="([^"]+)" rel="next">')
_PREVIOUS = re.compile(r'<a href="([^"]+)" rel="prev">')


def _more_lots(db_url: str, count: int) -> None:
    with psycopg.connect(db_url) as conn:
        set_actor(conn, user="admin", reason="paging test lots")
        conn.execute(
            "INSERT INTO erp.lots (item_id, lot_number, quantity, status, expires_on)"
            " SELECT (SELECT min(id) FROM erp.items), 'PAGED-' || lpad(n::text, 3, '0'), 1,"
            " 'quarantine', DATE '2030-01-01' FROM generate_series(1, %s) n",
            (count,),
        )


def test_lots_list_walks_every_lot_once_with_its_filter(web: Web) -> None:  # noqa: F811
    _more_lots(web.db_url, 2 * PER_PAGE + 7)
    with psycopg.connect(web.db_url) as conn:
        expected = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM erp.lots WHERE status = 'quarantine' AND lot_number LIKE 'PAGED%'"
                " ORDER BY id DESC"
            )
        ]
    sign_in(web.client, "qa", password("qa"))
    url: str | None = "/lots?q=PAGED&status=quarantine"
    seen: list[int] = []
    pages: list[str] = []
    while url is not None:
        page = web.client.get(url)
        assert page.status_code == 200, page.text
        rows = [int(x) for x in _LOT_LINK.findall(page.text)]
        assert len(rows) <= PER_PAGE
        seen.extend(rows)
        pages.append(url)
        following = _NEXT.search(page.text)
        url = following.group(1).replace("&amp;", "&") if following else None
    assert seen == expected
    assert len(pages) == 3
    assert all("q=PAGED" in u and "status=quarantine" in u for u in pages[1:])
    last = web.client.get(pages[-1]).text
    back = _PREVIOUS.search(last)
    assert back is not None
    assert "page=2" in back.group(1)
    assert "Rows 101–107" in last


def test_a_page_number_out_of_range_is_a_clear_refusal(web: Web) -> None:  # noqa: F811
    sign_in(web.client, "qa", password("qa"))
    for bad in ("0", "-1", "x", "100001"):
        r = web.client.get(f"/lots?page={bad}")
        assert 400 <= r.status_code < 500, (bad, r.status_code)
