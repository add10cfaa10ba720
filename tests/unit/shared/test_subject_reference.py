"""docs/subjects.md is generated from shared/ and must match what the code says now; the data the
generator adds (publishers, consumers, message ids) must cover every subject the code can build."""

from __future__ import annotations

import inspect
from pathlib import Path

from adrstack.shared import subject_reference as ref
from adrstack.shared.messages import VEN_FACTS
from adrstack.shared.subjects import Subjects

DOC = Path(__file__).resolve().parents[3] / "docs" / "subjects.md"


def test_docs_subjects_md_is_current():
    expected = ref.render()
    actual = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    assert actual == expected, f"docs/subjects.md is stale: run `{ref.REGENERATE}` and commit the result"


def test_every_subject_the_code_builds_is_documented():
    builders = {name for name, value in vars(Subjects).items()
                if inspect.isfunction(value) and not name.startswith("_") and name != "parse"}
    called: set[str] = set()

    class Spy(Subjects):
        def __getattribute__(self, name):
            if name in builders:
                called.add(name)
            return super().__getattribute__(name)

    for doc in ref.SUBJECTS:
        for variant in doc.variants or (None,):
            doc.subject(Spy(), variant) if variant else doc.subject(Spy())
    assert called == builders, f"subjects without a SubjectDoc in subject_reference.SUBJECTS: {builders - called}"


def test_each_ven_fact_is_documented_with_its_message():
    s = Subjects()
    documented = {ref.pattern(doc, s): doc.message for doc in ref.SUBJECTS}
    for suffix, model in VEN_FACTS.items():
        assert documented.get(f"openadr.ven.<ven_id>.{suffix}") is model, suffix


def test_subject_matching_follows_nats_wildcards():
    assert ref.subject_matches("openadr.ven.>", "openadr.ven.v1.report.data")
    assert not ref.subject_matches("openadr.ven.>", "openadr.ven")
    assert ref.subject_matches("openadr.ven.*.seen", "openadr.ven.v1.seen")
    assert not ref.subject_matches("openadr.ven.*.seen", "openadr.ven.v1.opt")
    assert not ref.subject_matches("openadr.event.>", "openadr.cmd.event.create")
