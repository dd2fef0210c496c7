"""wire/anthropic/models.py: Anthropic's cursor pages over a listing."""

from __future__ import annotations

import pytest

from modelport.errors import InvalidRequest
from modelport.wire.anthropic.models import Page, PageQuery, decode_page_query, page

IDS = ["a", "b", "c", "d", "e"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (PageQuery(), Page(start=0, end=5, has_more=False)),
        (PageQuery(limit=2), Page(start=0, end=2, has_more=True)),
        (PageQuery(limit=2, after_id="b"), Page(start=2, end=4, has_more=True)),
        (PageQuery(limit=2, after_id="e"), Page(start=5, end=5, has_more=False)),
        (PageQuery(limit=2, before_id="d"), Page(start=1, end=3, has_more=True)),
        (PageQuery(limit=2, before_id="b"), Page(start=0, end=1, has_more=False)),
        (PageQuery(limit=2, before_id="a"), Page(start=0, end=0, has_more=False)),
    ],
)
def test_pages(query: PageQuery, expected: Page) -> None:
    assert page(IDS, query) == expected


def test_an_empty_listing_is_one_empty_page() -> None:
    assert page([], PageQuery()) == Page(start=0, end=0, has_more=False)


def test_query_defaults_and_bounds() -> None:
    assert decode_page_query({}) == PageQuery(limit=20)
    assert decode_page_query({"limit": "1000", "after_id": "x"}).limit == 1000
    for bad in ("0", "1001", "-3", "2.5"):
        with pytest.raises(InvalidRequest, match=r"^limit: "):
            decode_page_query({"limit": bad})
