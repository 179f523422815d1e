"""The run report: what a build produced and how fast, from the work dir's own files."""

from qagen.report.run import StageTiming, stage_timings, summary_table, write_run_report

__all__ = ["StageTiming", "stage_timings", "summary_table", "write_run_report"]
