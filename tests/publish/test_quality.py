"""The quality section: figures counted from the work dir's own files, in the card and report."""

from qagen.manifest import read_records, write_records
from qagen.publish.stage import publish
from qagen.quality import collect_quality, quality_rows
from qagen.records import QARecord, QARejected
from qagen.records.qa import StatedFacts
from qagen.report.run import write_run_report
from qagen.workdir import WorkDir
from tests.publish.conftest import N_CLIPS


def _with_facts_and_gate(work: WorkDir) -> None:
    """Mark one shard's pairs as verified facts pairs and add gate/judge rejections."""
    key = next(iter(work.manifest_shards("clips")))
    recs = read_records(work.qa_shard(key), QARecord)
    recs = [r.model_copy(update={"template_id": "facts", "verified": True,
                                 "facts": StatedFacts(tempo_bpm=90.0),
                                 "question_form": "multiple_choice" if i == 0 else "open"})
            for i, r in enumerate(recs)]
    write_records(work.qa_shard(key), recs, QARecord)
    rej = read_records(work.qa_rejected_shard(key), QARejected)
    rej += [QARejected(clip_id=recs[0].clip_id, source=recs[0].source, template_id="llark_mir",
                       reason=reason, detail="x")
            for reason in ("gate_vague", "gate_vague", "gate_off_topic", "judge_low",
                           "near_duplicate")]
    write_records(work.qa_rejected_shard(key), rej, QARejected)


def test_figures_are_counted_from_the_pairs(work: WorkDir) -> None:
    _with_facts_and_gate(work)
    q = collect_quality(work)
    assert q.pairs == 2 * N_CLIPS
    assert q.by_template == {"facts": 6, "llark_mir": 6}
    assert q.by_form == {"open": 11, "multiple_choice": 1}
    assert q.verified == 6 and q.checkable == 6  # the LLM pairs state no parsed claim here
    assert q.gate_rejections == {"gate_vague": 2, "gate_off_topic": 1}
    assert q.judge_rejections == 1 and q.near_duplicates_rejected == 1
    assert q.answer_words_mean == 8.0 and 0 < q.distinct_1 <= 1 and 0 < q.distinct_2 <= 1
    # Each answer is given twice (two questions per clip): every answer repeats.
    assert q.repeated_answer_rate == 1.0
    assert len(q.sample) == 12 and q.sample == collect_quality(work).sample
    assert collect_quality(work, samples=5).sample == q.sample[:5]
    rows = dict((r[0], r[1]) for r in quality_rows(q))
    assert rows["verified against measurements / labels"] == "6 (50.0%)"


def test_card_and_run_report_show_the_quality_section(work: WorkDir) -> None:
    _with_facts_and_gate(work)
    publish(work)
    card = (work.root / "publish" / "hf" / "README.md").read_text()
    assert "## Quality" in card and "verified against measurements" in card
    assert "gate_vague 2" in card and "random accepted pairs" in card
    assert "It moves at about 90 beats per minute." in card
    report = write_run_report(work).read_text()
    assert "## Quality" in report and "## Gate rejections" in report
    assert "random accepted pairs" in report
