"""The workbench's live preview and grid end showing the latest mapping, even when edits overlap.

Both refresh on ``mapping-changed`` (sent by every edit response) with an outerHTML swap. A
refresh triggered while the previous one is still in flight used to be queued by htmx on the
old element; the in-flight response then replaced that element and the queued request, now on
a detached element, was dropped: the preview kept showing the state before the last edit.
The test holds the first preview and grid responses in the browser (``page.route``: the server
answers at once, the page gets the answer later), makes a second edit meanwhile, releases them
and checks that the last edit is what the page shows.
"""

from __future__ import annotations

import contextlib

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import Error as PlaywrightError

from mappings import services_edit as edit
from mappings.models import RuleStep, System
from mappings.schema import schema_cache_clear
from tests.factories import PASSWORD, UserFactory
from tests.mappings.workbench_fixtures import demo_files  # noqa: F401
from tests.web.browser import log_in, shot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]
# A refresher is settled once its element was replaced (no old marker) and has no request out.
SETTLED = (
    "sel => { const e = document.querySelector(sel);"
    " return e && !e.dataset.old && !e.classList.contains('htmx-request'); }"
)


@pytest.fixture
def name_field(transactional_db, demo_files):  # noqa: F811
    """An analyst and a customers → accounts entity whose ``name`` copies ``Cust_Name``."""
    schema_cache_clear()
    user = UserFactory(username="race-web", roles=["analyst"])
    user.groups.add(Group.objects.get_or_create(name="analyst")[0])
    source = System.objects.create(
        name="Legacy CRM", kind="sqlite", path=str(demo_files[0]), role="source"
    )
    target = System.objects.create(
        name="New CRM", kind="sqlite", path=str(demo_files[1]), role="target"
    )
    plan = edit.plan_create(user=user, data={"name": "Race", "source": source, "target": target})
    entity = edit.entity_create(
        plan=plan,
        user=user,
        data={
            "source_table": "customers",
            "target_table": "accounts",
            "source_key": ["Customer_ID"],
            "target_key": "id",
            "load_order": 0,
        },
    )
    field = edit.field_create(
        entity=entity, user=user, data={"target_column": "name", "source_columns": ["Cust_Name"]}
    )
    return user, plan, entity, field


class Hold:
    """Holds the first response from each URL part until released; later ones pass at once.

    The request reaches the server at once (the response shows the mapping as it was then);
    only its delivery to the page waits.
    """

    def __init__(self, page, parts: tuple[str, ...]) -> None:
        self.held: dict[str, tuple] = {}
        self.parts = parts
        page.route(lambda url: any(p in url for p in parts), self._route)

    def _route(self, route) -> None:
        part = next(p for p in self.parts if p in route.request.url)
        if part in self.held:
            route.continue_()
        else:
            # claimed before the fetch, which lets other handlers run: a request made
            # meanwhile passes (and is not taken for the held one)
            self.held[part] = (route, None)
            self.held[part] = (route, route.fetch())

    def release(self) -> None:
        for route, response in self.held.values():
            if response is None:
                continue  # still fetching: the page aborted it (nothing waits for it)
            # The page may have aborted it already (hx-sync replace): nothing to deliver then.
            with contextlib.suppress(PlaywrightError):
                route.fulfill(response=response)


def _add_step(page, rule: str, count: int) -> None:
    page.select_option("#new-rule", rule)
    page.click("#field-editor form.add-step button.btn")
    page.wait_for_function(
        "n => document.querySelectorAll('#field-editor .step').length === n", arg=count
    )


def _name_shown(page) -> str:
    return page.inner_text("#preview tbody tr:first-child td[data-col='name'] .value")


def _mark_old(page) -> None:
    page.evaluate("['#preview', '#grid'].forEach(s => document.querySelector(s).dataset.old = 1)")


def _settle(page) -> None:
    for sel in ("#preview", "#grid"):
        page.wait_for_function(SETTLED, arg=sel)


def _open_entity(page, base: str, user, plan, entity, *, column: bool = True) -> None:
    """Log in, open the entity's workbench and wait for its preview (and the name column's
    editor when ``column``)."""
    log_in(page, base, user.username, PASSWORD)
    page.goto(f"{base}/plans/{plan.slug}/entities/{entity.uuid}/")
    page.wait_for_selector("#preview table.preview")
    if column:
        page.click("#col-name button")
        page.wait_for_selector("#field-editor form.add-step")


def test_preview_and_grid_show_the_last_edit_when_refreshes_overlap(live_server, page, name_field):
    user, plan, entity, field = name_field
    base = live_server.url
    _open_entity(page, base, user, plan, entity)
    source = page.inner_text("#preview tbody tr:first-child td.src")
    assert source != source.lower() and source != source.upper()

    hold = Hold(page, ("/preview/", "/grid/"))
    _mark_old(page)
    with page.expect_request(lambda r: "/preview/" in r.url):
        _add_step(page, "lower", 1)  # its refreshes are held in flight ...
    _add_step(page, "upper", 2)  # ... while this edit is made
    shot(page, "workbench-race-1-held")
    hold.release()
    _settle(page)
    shot(page, "workbench-race-2-released")
    assert _name_shown(page) == source.upper()
    assert page.inner_text("#col-name .rule >> nth=-1") == "upper"
    assert [s.rule for s in RuleStep.objects.filter(field=field)] == ["lower", "upper"]

    # The element that replaced the old one still refreshes on the next edit.
    _mark_old(page)
    page.click("#field-editor .step:last-child button[title=Remove]")
    page.wait_for_function("() => document.querySelectorAll('#field-editor .step').length === 1")
    _settle(page)
    shot(page, "workbench-race-3-next-edit")
    assert _name_shown(page) == source.lower()
    assert page.locator("#col-name .rule").all_inner_texts() == ["lower"]


def test_opening_a_column_while_the_grid_refreshes_keeps_the_refresh(live_server, page, name_field):
    """The grid's buttons open the field editor; one clicked while the grid's refresh is out
    must not abort that refresh (hx-sync is not inherited by the grid's content)."""
    user, plan, entity, _field = name_field
    base = live_server.url
    _open_entity(page, base, user, plan, entity)
    hold = Hold(page, ("/grid/",))
    _mark_old(page)
    with page.expect_request(lambda r: "/grid/" in r.url):
        _add_step(page, "upper", 1)  # the grid's refresh is held in flight ...
    page.click("#col-phone button")  # ... while a column is opened from the grid
    page.wait_for_selector("#field-editor h2 code:text-is('phone')")
    assert page.evaluate("document.querySelector('#grid').classList.contains('htmx-request')")
    hold.release()
    _settle(page)
    shot(page, "workbench-race-4-grid-and-editor")
    assert page.locator("#col-name .rule").all_inner_texts() == ["upper"]


def test_an_edit_while_a_refresh_settles_is_not_lost(live_server, page, name_field):
    """htmx makes a swapped-in element listen only when it settles (20 ms after the swap by
    default, later on a busy machine): an edit's ``mapping-changed`` in between reached
    neither the old element (detached) nor the new one (not listening yet), and the preview
    and grid kept the state before that edit. Here the window is widened to 20 s
    (``htmx.config.defaultSettleDelay``) so the race is certain; the refreshers swap with
    ``settle:0ms`` and listen at once."""
    user, plan, entity, field = name_field
    base = live_server.url
    _open_entity(page, base, user, plan, entity, column=False)
    source = page.inner_text("#preview tbody tr:first-child td.src")
    assert source != source.upper()
    page.evaluate("htmx.config.defaultSettleDelay = 20000")
    _mark_old(page)
    page.evaluate("htmx.trigger(document.body, 'mapping-changed')")  # as an edit's response
    for sel in ("#preview", "#grid"):  # both swapped in: the window is open
        page.wait_for_function(
            "sel => { const e = document.querySelector(sel); return e && !e.dataset.old; }",
            arg=sel,
        )
    edit.step_add(field=field, user=user, rule="upper")  # an edit made now ...
    page.evaluate("htmx.trigger(document.body, 'mapping-changed')")  # ... and its event
    page.wait_for_function(
        "u => { const c = document.querySelector("
        "'#preview tbody tr:first-child td[data-col=name] .value'); return c && c.innerText === u;"
        " }",
        arg=source.upper(),
        timeout=60_000,
    )
    page.wait_for_function(
        "() => [...document.querySelectorAll('#col-name .rule')].map(e => e.innerText)"
        ".join() === 'upper'",
        timeout=60_000,
    )
    shot(page, "workbench-race-5-settle-window")


def _rows_shown(page) -> int:
    return page.locator("#preview tbody tr").count()


def test_an_edit_while_the_rows_choice_loads_keeps_the_choice(live_server, page, name_field):
    """The Rows/Sample form shares the preview's ``hx-sync`` (replace): an edit's refresh made
    while the form's request is out aborts that request. The refresh used to ask for the rows
    the preview showed before (its own URL), so the user's choice was lost; every refresh now
    sends the form's current choice, and the page ends on the last edit with the chosen rows."""
    user, plan, entity, field = name_field
    base = live_server.url
    _open_entity(page, base, user, plan, entity)
    source = page.inner_text("#preview tbody tr:first-child td.src")
    assert _rows_shown(page) == 20
    assert source != source.upper()

    hold = Hold(page, ("/preview/",))
    _mark_old(page)
    page.select_option("#preview form select[name=n]", "50")
    with page.expect_request(lambda r: "/preview/" in r.url and "n=50" in r.url):
        page.click("#preview form button")  # the choice's request is held in flight ...
    _add_step(page, "upper", 1)  # ... while an edit is made (its refresh replaces it)
    shot(page, "workbench-rows-1-held")
    hold.release()
    _settle(page)
    shot(page, "workbench-rows-2-released")
    assert _name_shown(page) == source.upper()
    assert _rows_shown(page) == 50
    assert page.input_value("#preview form select[name=n]") == "50"

    # The other way round: the choice made while an edit's refresh is out also shows with it.
    hold = Hold(page, ("/preview/",))
    _mark_old(page)
    with page.expect_request(lambda r: "/preview/" in r.url):
        page.click("#field-editor .step:last-child button[title=Remove]")  # refresh held ...
    page.select_option("#preview form select[name=n]", "10")
    page.select_option("#preview form select[name=order]", "random")
    page.click("#preview form button")  # ... while the rows are chosen
    hold.release()
    _settle(page)
    shot(page, "workbench-rows-3-choice-after-edit")
    assert _rows_shown(page) == 10
    assert page.input_value("#preview form select[name=order]") == "random"
    assert page.locator("#col-name .rule").all_inner_texts() == []
    assert [s.rule for s in RuleStep.objects.filter(field=field)] == []

    # A later edit's refresh keeps the choice too.
    _mark_old(page)
    _add_step(page, "lower", 1)
    _settle(page)
    shot(page, "workbench-rows-4-next-edit")
    assert _rows_shown(page) == 10
    assert page.input_value("#preview form select[name=n]") == "10"
    assert page.input_value("#preview form select[name=order]") == "random"
