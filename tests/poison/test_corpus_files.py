"""The manifest and the corpus files agree: every file is used, every case has a file and an outcome."""

from __future__ import annotations

from poison_corpus import CASES, CORPUS


def test_every_corpus_file_belongs_to_a_case_and_every_case_to_a_path():
    files = {p.name for p in CORPUS.iterdir()} - {"manifest.toml"}
    assert files == {case.file for case in CASES}
    assert all(case.consumer or case.ingest for case in CASES)
    assert all(case.why for case in CASES if not (case.consumer and case.ingest) and case.headers == {})
