"""The one place that knows 2.0b XML: parse what VENs send into typed messages, render what a VTN sends."""

from .guard import HostileXml
from .reader import InvalidContent, MalformedXml, parse

__all__ = ["HostileXml", "InvalidContent", "MalformedXml", "parse"]
