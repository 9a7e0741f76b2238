"""Learning from review: a reviewer confirms that a printed row label means a row; the rule file
(``NIANBAO_RULES``) gets the variant (version bumped, history kept) and extraction uses it."""
from __future__ import annotations

import json

from extractors.pipeline import extract_bytes
from worker import review

from reviewkit import reviewer, seed_text, store_report

MISSPELT = "行政处伐"          # 行政处罚 with 罚 misread: no keyword, too short for the fuzzy matcher


def _report(tag: str = "") -> bytes:
    text = seed_text()
    assert "行政处罚\t0\t28" in text
    return (text.replace("行政处罚\t0\t28", f"{MISSPELT}\t0\t28") + tag).encode()


def test_review_learned_label_is_used_by_the_next_extraction(store, rules_file):
    before = extract_bytes(_report(), "before.txt").to_dict()
    assert before["fields"]["active.penalty.change"]["value"] is None
    assert before["fields"]["active.penalty.change"]["review"] is True

    doc = store_report(store, _report(), "penalty.txt")
    who = reviewer(store)
    review.claim_document_items(store, who.user_id, doc)
    item = next(i for i in review.my_items(store, who.user_id, document_id=doc)
                if i["field_key"] == "active.penalty.change")
    ctx = review.item_context(store, item["id"])
    assert ctx["learn"]["row"] == "active.penalty" and MISSPELT in ctx["learn"]["suggestions"]

    out = review.learn_label(store, who, ctx["key"], MISSPELT, document_id=doc)
    assert out == {"state": "learned", "row": "active.penalty", "version": 1, "votes": 1}
    rules = json.loads(rules_file.read_text("utf-8"))
    assert rules["variants"] == {"active.penalty": [MISSPELT]} and rules["history"][0]["by"] == who.name
    assert review.learn_label(store, who, "active.penalty", MISSPELT)["state"] == "known"

    # the document itself, re-extracted with the rule file: the row is found, nothing flagged there
    review.reextract_now(store, doc)
    data = store.document_json(doc)
    assert [data["fields"][f"active.penalty.{c}"]["value"] for c in ("prev_items", "change", "decisions")] == [0, 28, 0]
    assert not any(data["fields"][f"active.penalty.{c}"]["review"] for c in ("prev_items", "change", "decisions"))
    # and any later report with that spelling (the pipeline reads NIANBAO_RULES)
    after = extract_bytes(_report("\n另一份报告\n"), "after.txt").to_dict()
    assert after["fields"]["active.penalty.change"] == {**after["fields"]["active.penalty.change"],
                                                        "value": 28, "review": False}


def test_review_label_needs_the_configured_number_of_reviewers(store, rules_file):
    a, b = reviewer(store), reviewer(store)
    first = review.learn_label(store, a, "apply.denied.state_secret", "1.属於国家秘蜜", min_votes=2)
    assert first["state"] == "voted" and first["votes"] == 1 and not rules_file.exists()
    again = review.learn_label(store, a, "apply.denied.state_secret", "1.属於国家秘蜜", min_votes=2)
    assert again["state"] == "voted" and again["votes"] == 1          # the same reviewer twice is one vote
    second = review.learn_label(store, b, "apply.denied.state_secret", "1.属於国家秘蜜", min_votes=2)
    assert second["state"] == "learned" and second["version"] == 1
    removed = review.remove_label(a, "apply.denied.state_secret", "1.属於国家秘蜜")
    rules = review.load_rules(rules_file)
    assert removed["version"] == 2 and rules["variants"] == {} and [h["action"] for h in rules["history"]] == [
        "add", "remove"]
