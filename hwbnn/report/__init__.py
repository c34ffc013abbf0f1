"""Pictures (:mod:`.plots`) and the self-contained HTML design report (:mod:`.page`)."""

from .page import DesignReport, write_report

__all__ = ["DesignReport", "write_report"]
