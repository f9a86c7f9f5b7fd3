"""Reporting: the report schema and everything that reads a report.

Owns the versioned JSON report and its sidecars (:mod:`.report`, :mod:`.schema`, :mod:`.outputs` for safe
writes), terminal tables and their layout (:mod:`.render`, :mod:`.render_analysis`, :mod:`.layout`), model
cards, plots, the HTML page, ``diff``, policies (the release gate, :mod:`.policy`) and re-analysis of a saved
report; :mod:`.lookup` finds a report's members, results and analyses for all of them. It may
import the foundation, ``models`` (recorded shapes only), ``inputs``, ``analysis`` and ``probes``; never
``run`` or the CLI.
"""
