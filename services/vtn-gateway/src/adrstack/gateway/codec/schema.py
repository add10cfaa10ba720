"""The OpenADR 2.0b XSD (vendored under xsd/, from the OpenADR Alliance via openleadr), loaded once."""

from __future__ import annotations

import functools
from pathlib import Path

from lxml import etree

XSD_DIR = Path(__file__).with_name("xsd")


@functools.cache
def schema() -> etree.XMLSchema:
    # Loaded on first use, not at import: it takes ~0.3 s. The imports between the XSD files are
    # relative file names, so nothing is fetched from the network.
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    return etree.XMLSchema(etree.parse(str(XSD_DIR / "oadr_20b.xsd"), parser))
