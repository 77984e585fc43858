"""The checklist's items, to which devices each applies, and the words for their verdicts.

The floor below device profiles and certification: a profile is checked against the items
(harness.device), a run is judged by them (harness.certify, harness.bdd), and neither of
those is needed to read them. Modules: `checklist` (checklist.toml loaded and validated),
`applies` (applicability expressions over a profile's kind and capabilities), `verdicts`
(pytest outcome -> verdict, precedence).
"""
