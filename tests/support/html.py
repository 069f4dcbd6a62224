"""Strict HTML5 parsing for report tests (html5lib): any parse error raises."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import html5lib


def parse_strict(html: str) -> ET.Element:
    parser = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False)
    root: ET.Element = parser.parse(html)
    return root


def local(element: ET.Element) -> str:
    """The tag without its namespace (inline SVG elements are namespaced)."""
    return str(element.tag).rsplit("}", 1)[-1]
