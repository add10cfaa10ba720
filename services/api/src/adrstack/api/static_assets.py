"""``/static/``: the dashboard's own files and the vendored browser libraries (no CDN), and the
GraphiQL page rewritten to load its libraries from there instead of unpkg."""

from __future__ import annotations

import re
from functools import lru_cache

from starlette.staticfiles import StaticFiles
from strawberry.http.ides import get_graphql_ide_html

from .vendor_assets import STATIC_DIR, manifest

STATIC_PATH = "/static"
_CDN_URL = re.compile(r"https://unpkg\.com/(?P<package>(?:@[^/@]+/)?[^/@]+)@(?P<version>[^/]+)/(?P<file>[^\"']+)")


class StrawberryTemplateChanged(RuntimeError):
    """strawberry's GraphiQL page asks for a file we have not vendored (e.g. after an upgrade)."""


def static_files() -> StaticFiles:
    # Revalidated on each load (ETag / Last-Modified answer 304), so an upgrade is seen at once.
    return StaticFiles(directory=STATIC_DIR, check_dir=True)


@lru_cache(maxsize=1)
def graphiql_page() -> str:
    """strawberry's GraphiQL page with every unpkg URL replaced by our copy of that exact file
    (relative, so the page works behind a path prefix); its integrity hashes stay and still hold."""
    vendored = {(f["package"], f["version"], f["file"]): f["path"] for f in manifest()["files"]}

    def local(match: re.Match) -> str:
        key = (match["package"], match["version"], match["file"])
        if key not in vendored:
            raise StrawberryTemplateChanged(
                f"GraphiQL wants {match[0]}, which is not vendored: add it to static/vendor/manifest.json "
                "and run python -m adrstack.api.vendor_assets --fetch --rehash")
        return f"static/vendor/{vendored[key]}"

    page = _CDN_URL.sub(local, get_graphql_ide_html("graphiql"))
    leftover = re.findall(r"""(?:src|href)\s*=\s*["'](?:https?:)?//[^"']+""", page)
    if leftover:
        raise StrawberryTemplateChanged(f"GraphiQL still loads {leftover} from outside the api")
    return page
