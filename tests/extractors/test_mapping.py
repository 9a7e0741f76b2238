"""Label -> row mapping: spaCy phrase rules as data, fuzzy fallback with a margin."""
from __future__ import annotations

import pytest

from extractors.meta import detect_agency, detect_template, detect_year


@pytest.mark.parametrize("printed,key", [
    ("5.要求行政机关确认或重新出具已获取信", "apply.not_processed.confirm_reissue"),   # split label
    ("2.其他法律行政止公开", "apply.denied.prohibited_by_law"),                      # typo
    ("1、本机关不掌握相关信息", "apply.unable.not_held"),                            # older wording
    ("二、上年结转政府信息公开申", "apply.carried_in"),
    ("7.属于行政执", "apply.denied.enforcement_file"),
    ("（七）总计", "apply.total"),
    ("3.其他", "apply.other.misc"),
    ("行政规范性文件", "active.normative_docs"),
    ("1.属于国家秘蜜", "apply.denied.state_secret"),                                  # OCR misread: fuzzy
])
def test_mapping_label_variants(matcher, printed, key):
    hits = [h for h in matcher.match(printed) if not h.key.startswith(("header.", "section."))]
    assert hits and hits[-1].key == key


def test_mapping_several_labels_in_one_run(matcher):
    keys = [h.key for h in matcher.match("(六)其他处理1.申请人无正当理由逾期不补正、行政机关不再处理其政府信息公开申请")]
    assert keys == ["apply.other", "apply.other.no_correction"]


def test_mapping_fuzzy_refuses_unclear_text(matcher):
    assert matcher.match("本年度工作亮点") == []


def test_mapping_learned_variant_is_used(matcher):
    from extractors.mapping import LabelMatcher
    m = LabelMatcher({"apply.denied.third_party": ["保障他人正当权利"]})
    assert [h.key for h in m.match("4.保障他人正当权利")] == ["apply.denied.third_party"]
    assert matcher.match("4.保障他人正当权利") == []


def test_meta_year_is_statistics_year_not_publication_year():
    text = "标题: 某县2021年度政府信息公开工作年度报告\n发布时间: 2022-02-08\n本报告所列数据的统计期限自2021年1月1日起"
    assert detect_year(text) == 2021
    assert detect_agency(text) == "某县"


def test_meta_agency_from_editor_and_abbreviation():
    assert detect_agency("报告由洛龙区民政局办公室编制。") == "洛龙区民政局"
    assert detect_agency("2024 年上海市科委政府信息公开工作\n年度报告") == "上海市科学技术委员会"


def test_meta_template_by_headers_then_year():
    assert detect_template("信息内容 本年制发件数 本年废止件数", 2019) == "2021"
    assert detect_template("信息内容 本年新制作数量 本年新公开数量", 2022) == "2019"
    assert detect_template("无表头", 2022) == "2021"
