"""The dashboard's and GraphiQL's browser files: vendored byte for byte from npm (no CDN), and
the dashboard's GraphQL operations valid against the schema."""

from __future__ import annotations

import re

import pytest
from graphql import parse, validate

from adrstack.api.dashboard import dashboard_operation, dashboard_operations
from adrstack.api.schema import build_schema
from adrstack.api.settings import ApiSettings
from adrstack.api.static_assets import StrawberryTemplateChanged, graphiql_page
from adrstack.api import static_assets, vendor_assets


def test_vendored_files_are_the_npm_packages_files():
    assert vendor_assets.check() == []
    assert vendor_assets.main(["--check"]) == 0


def test_a_changed_vendored_file_is_caught(tmp_path, monkeypatch):
    copy = tmp_path / "vendor"
    copy.mkdir()
    (copy / "manifest.json").write_text(vendor_assets.MANIFEST.read_text())
    monkeypatch.setattr(vendor_assets, "VENDOR_DIR", copy)
    monkeypatch.setattr(vendor_assets, "MANIFEST", copy / "manifest.json")
    first = vendor_assets.manifest()["files"][0]
    (copy / first["path"]).parent.mkdir(parents=True)
    (copy / first["path"]).write_text("tampered")
    problems = vendor_assets.check()
    assert problems[0] == f"{first['path']}: not {first['package']}@{first['version']}'s {first['file']}"
    assert all(p.endswith(": missing") for p in problems[1:]) and len(problems) == len(vendor_assets.manifest()["files"])


def test_graphiql_page_points_at_the_vendored_files_with_their_integrity():
    page = graphiql_page()
    assert "unpkg.com" not in page and not re.search(r'(?:src|href)="https?://', page)
    for entry in vendor_assets.manifest()["files"]:
        if entry["path"].endswith((".js", ".css")) and f'static/vendor/{entry["path"]}"' in page:
            # strawberry's integrity attribute still holds for our copy.
            assert entry["sha384"] in page
    assert page.count("static/vendor/") == 7


def test_graphiql_page_refuses_a_library_we_did_not_vendor(monkeypatch):
    graphiql_page.cache_clear()
    monkeypatch.setattr(static_assets, "get_graphql_ide_html",
                        lambda ide: '<script src="https://unpkg.com/graphiql@9.9.9/graphiql.min.js"></script>')
    try:
        with pytest.raises(StrawberryTemplateChanged, match="graphiql@9.9.9"):
            graphiql_page()
    finally:
        graphiql_page.cache_clear()


@pytest.mark.parametrize("name", dashboard_operations())
def test_dashboard_operations_are_valid_against_the_schema(name):
    schema = build_schema(ApiSettings())._schema
    errors = validate(schema, parse(dashboard_operation(name)))
    assert errors == [], errors
