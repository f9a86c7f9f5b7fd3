"""Running a scan: members × probes as units of work, where they run and what is already known.

Owns the scan itself (:mod:`.scan`, its options and events in :mod:`.options`), units and executors (local,
Ray), the plan (``scan --plan``: placement, memory estimates, token counts), probe subsets and the result
store. It may import every layer below it (foundation, models, inputs, analysis, probes, reporting); only
the CLI imports it.
"""
