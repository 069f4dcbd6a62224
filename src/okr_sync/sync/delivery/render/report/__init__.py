"""The report: :class:`ReportData` gathered once, rendered as HTML, JSON or CSV."""

from okr_sync.sync.delivery.render.report.data import (
    NoScorecardError,
    ReportData,
    load_report_data,
)
from okr_sync.sync.delivery.render.report.html import render_html_report
from okr_sync.sync.delivery.render.report.tabular import report_csv, report_json

__all__ = ["NoScorecardError", "ReportData", "load_report_data", "render_html_report",
           "report_csv", "report_json"]
