"""`/catalog/<blueprint>/`: a blueprint's entities as a table — chosen columns (remembered per blueprint in the
session), filters compiled by the API's search (catalog/selectors/search.py), sorting by a column and keyset
pages (catalog/selectors/sorted_pages.py). Permission filtering happens in the one search query."""
import json

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from catalog.selectors.blueprints import blueprints_by_identifier
from web.catalog_pages.blueprints import readable_blueprint_or_404
from web.catalog_pages.columns import (blueprint_columns, blueprint_url, default_column_keys, entity_url,
                                   needs_blueprint_definitions)
from web.catalog_pages.filters import attach_errors, filter_controls, filter_rule_set
from catalog.selectors.sorted_pages import Page, Sort, sorted_page
from web.catalog_pages.saved_views import saved_view_post, saved_views_context
from catalog.selectors.entities import entities_json
from catalog.selectors.search import search_queryset
from portal.errors import ValidationFailed
from web.pages import page_size

DEFAULT_SORT = "$identifier"
PAGING_PARAMS = ("after", "before")
COLUMNS_PARAM, COLUMNS_RESET = "columns", "default"


def _session_key(blueprint):
    return f"catalog.columns.{blueprint.identifier}"


def chosen_column_keys(request, blueprint, columns):
    """`?columns=a,b,c` (or repeated `columns`) picks the columns and is remembered for this blueprint;
    `?columns=default` forgets the choice. Unknown keys are dropped (a property may have been removed)."""
    known = {c.key for c in columns}
    if COLUMNS_PARAM in request.GET:
        raw = [part.strip() for value in request.GET.getlist(COLUMNS_PARAM) for part in value.split(",")]
        if raw == [COLUMNS_RESET]:
            request.session.pop(_session_key(blueprint), None)
        else:
            request.session[_session_key(blueprint)] = list(dict.fromkeys(k for k in raw if k in known))
    chosen = request.session.get(_session_key(blueprint))
    if chosen is None:
        return default_column_keys(columns)
    return [k for k in chosen if k in known]


def _query(params, **changes):
    """The page's query string with `changes` applied (None removes a parameter); paging always restarts."""
    query = params.copy()
    for name in (*PAGING_PARAMS, COLUMNS_PARAM):
        query.pop(name, None)
    for name, value in changes.items():
        if value is None:
            query.pop(name, None)
        else:
            query[name] = value
    encoded = query.urlencode()
    return f"?{encoded}" if encoded else "?"


def _sort_options(columns):
    options = [("$identifier", "Identifier"), ("$title", "Title")]
    options += [(c.key, c.title) for c in columns if c.sortable and c.key not in ("$identifier", "$title")]
    return [(str(Sort(key, descending)), f"{title}, {'descending' if descending else 'ascending'}")
            for key, title in options for descending in (False, True)]


def _header(column_key, title, sort, params, sortable, column=None):
    header = {"key": column_key, "title": title, "sortable": sortable, "aria_sort": None, "href": None,
              "kind": column.kind if column is not None and column.computed else "",
              "note": column.note if column is not None else ""}
    if sortable:
        current = sort.key == column_key
        header["aria_sort"] = ("descending" if sort.descending else "ascending") if current else None
        header["href"] = _query(params, sort=str(Sort(column_key, current and not sort.descending)))
    return header


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def entity_table(request, blueprint):
    bp = readable_blueprint_or_404(request.user, blueprint)
    definitions = blueprints_by_identifier() if needs_blueprint_definitions(bp) else {}
    columns = blueprint_columns(bp, definitions)
    by_key = {c.key: c for c in columns}
    shown = [by_key[k] for k in chosen_column_keys(request, bp, columns)]
    save_error = ""
    if request.method == "POST":  # save or delete a saved view of this table
        done, save_error = saved_view_post(request, bp, blueprint_url(bp.identifier), [c.key for c in shown])
        if done is not None:
            return done
    controls = filter_controls(columns, request.GET)
    rule_set, owners = filter_rule_set(controls)
    sort = Sort.parse(request.GET.get("sort") or DEFAULT_SORT, aggregated=bp.aggregation_properties or {})
    sortable = {k for k, _ in _sort_options(columns)}
    page, error, status = Page([], None, None), "", 200
    try:
        if str(sort) not in sortable:
            raise ValidationFailed(f"{sort.key!r} is not a column this table can sort by", path="sort")
        limit = page_size(request)
        queryset = search_queryset(rule_set, user=request.user, blueprint=bp)
        page = sorted_page(queryset, sort=sort, limit=limit, after=request.GET.get("after"),
                           before=request.GET.get("before"))
    except ValidationFailed as exc:
        status = 422
        error = attach_errors(exc, owners)
    for row in page.rows:
        row.blueprint = bp
    documents = entities_json(page.rows, user=request.user)
    rows = [{"document": doc, "url": entity_url(bp.identifier, doc["identifier"]),
             "cells": [column.cell(doc) for column in shown]} for doc in documents]
    params = request.GET
    headers = [_header(c.key, c.title, sort, params, c.sortable, c) for c in shown]
    context = {
        "blueprint": bp,
        "blueprint_url": blueprint_url(bp.identifier),
        "columns": columns,
        "shown": shown,
        "shown_keys": {c.key for c in shown},
        "headers": headers,
        "title_header": _header("$title", "Title", sort, params, True),
        "rows": rows,
        "controls": controls,
        "search": controls[0],
        "property_controls": controls[1:],
        "active_filters": sum(1 for c in controls[1:] if c.value),
        "sort": str(sort),
        "sort_options": _sort_options(columns),
        "limit": request.GET.get("limit", ""),
        "error": error,
        "next_url": _query(params, after=page.next_cursor) if page.next_cursor else None,
        "previous_url": _query(params, before=page.previous_cursor) if page.previous_cursor else None,
        "first_url": _query(params) if page.previous_cursor else None,
        "rule_set_json": json.dumps({"query": rule_set}, indent=2, ensure_ascii=False),
        "search_api": f"/v1/blueprints/{bp.identifier}/entities/search",
        **saved_views_context(request, bp, blueprint_url(bp.identifier), save_error, request.POST.get("name", "")),
    }
    return render(request, "catalog/entity_table.html", context, status=422 if save_error else status)
