"""Common abbreviations of organ names as printed in reports -> the official wording.

Data, not code: a new abbreviation seen in a real report is one line here.
``上海市科委`` (shared/devset/shanghai-kjw-2024.md) is 上海市科学技术委员会.
"""
ABBREVIATIONS: dict[str, str] = {
    "科委": "科学技术委员会",
    "发改委": "发展和改革委员会",
    "经信委": "经济和信息化委员会",
    "教委": "教育委员会",
    "卫健委": "卫生健康委员会",
    "卫计委": "卫生和计划生育委员会",
    "住建委": "住房和城乡建设委员会",
    "建委": "建设委员会",
    "商委": "商务委员会",
    "民宗委": "民族和宗教事务委员会",
    "国资委": "国有资产监督管理委员会",
    "农委": "农业委员会",
    "交委": "交通委员会",
}
# Suffixes that end an organ's name (used to trim "…民政局办公室编制" to the organ).
ORGAN_ENDINGS = ("局", "委员会", "委", "人民政府", "政府", "办公厅", "办公室", "院", "厅", "部", "署", "会",
                 "中心", "管委会", "区", "县", "市", "镇", "街道办事处", "乡")
