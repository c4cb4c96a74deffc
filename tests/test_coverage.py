"""`eligibility rules coverage`: articles found in seed texts, coverage by quotes, not-encoded validation."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from eligibility.cli import app
from eligibility.coverage import (SeedText, build_catalogue, chinese_number, find_articles, merge_duplicates,
                                  numbering_gaps, parse_toc, repeats_passages, rows, uncovered,
                                  validate_not_encoded)

ROOT = Path(__file__).resolve().parent.parent


def _articles(text: str):
    return find_articles(SeedText("t.txt", text))


def _labels(text: str) -> list[str]:
    return [a.path for a in _articles(text)]


# ---------------------------------------------------------------- article detection


def test_numbered_headings_at_line_starts():
    text = ("关于某事的工作方案\n"
            "一、总体要求\n"
            "（一）指导思想。认真贯彻。\n"
            "（二）主要目标。到2022年，全市消费超过2.8万元。\n"
            "二、主要任务\n"
            "1. 稳定传统消费。对企业给予补贴。\n"
            "2、发展网络消费。\n"
            "(1) 培育直播。\n"
            "(三) 半角括号也算。\n"
            "十二、第十二条\n")
    arts = _articles(text)
    assert [a.path for a in arts] == ["一、", "一、（一）", "一、（二）", "二、", "二、1.", "二、2.", "二、2.（1）",
                                      "二、（三）", "十二、"]
    assert [a.level for a in arts] == [1, 2, 2, 1, 3, 3, 4, 2, 1]
    assert [a.number for a in arts] == [1, 1, 2, 2, 1, 2, 1, 3, 12]
    assert arts[1].heading == "指导思想"
    assert arts[4].heading == "稳定传统消费"
    assert arts[0].line == 2
    # a parent's span holds its sub-articles; a leaf ends at the next heading
    one, sub1, sub2, two = arts[:4]
    assert one.start < sub1.start < sub2.start < one.end == two.start
    assert sub1.end == sub2.start


def test_headings_after_full_width_spaces_inside_one_line():
    # the Hebei 2020 seed runs many articles together in one long line
    text = "为应对疫情，制定本方案。　　一、总体要求　　（一）指导思想。认真贯彻。　　 1.巩固成果。实施管控。　　 2.组织复工。"
    assert _labels(text) == ["一、", "一、（一）", "一、（一）1.", "一、（一）2."]


def test_headings_run_together_without_line_breaks():
    # the Henan seed has lost its line breaks: headings follow a full stop, a bracket or a parent's title
    text = ("请认真贯彻落实。一、多点发力，促进消费有序恢复（一）实施财税支持政策。减征50%。"
            "（责任单位：省税务局）（二）加大信贷扶持力度。内容。")
    arts = _articles(text)
    assert [a.path for a in arts] == ["一、", "一、（一）", "一、（二）"]
    assert arts[0].heading == "多点发力，促进消费有序恢复"
    assert arts[1].heading == "实施财税支持政策"


def test_numbers_in_running_text_are_not_headings():
    text = ("全市增长5.5%左右，人均支出2.8万元。按照第（三）项规定，3.5人以上，"
            "2020年3月1日起执行。依据（2020）1号文件。\n"
            "2020.3.1 印发\n")
    assert _articles(text) == []


def test_chinese_numbers():
    assert [chinese_number(s) for s in ("一", "十", "十二", "二十", "二十三", "九十九")] == [1, 10, 12, 20, 23, 99]


def test_duplicated_articles_merge_only_in_a_text_that_repeats_passages():
    para = "（一）实施财税支持政策。" + "对小规模纳税人按50%的税额幅度减征资源税、城市维护建设税、房产税、城镇土地使用税、印花税和教育费附加，政策执行期限至2024年12月31日。" * 2
    scrambled = "通知。一、多点发力" + para + "（二）加大信贷扶持力度。内容。" + "一、多点发力" + para + "（二）加大信贷扶持力度。其他。"
    st = SeedText("s.txt", scrambled)
    arts = find_articles(st)
    assert repeats_passages(st, 0, len(st.norm))
    groups = merge_duplicates(arts, True)
    assert [(a.path, len(g)) for a, g in groups] == [("一、", 2), ("一、（一）", 2), ("一、（二）", 2)]
    # two plans in one document with the same heading are different articles
    plain = "一、保障措施\n（一）加强组织领导。甲。\n一、保障措施\n（一）加强组织领导。乙。\n"
    st2 = SeedText("p.txt", plain)
    assert not repeats_passages(st2, 0, len(st2.norm))
    assert len(merge_duplicates(find_articles(st2), False)) == 4


def test_numbering_gaps():
    arts = _articles("一、甲\n二、乙\n四、丁\n（一）子\n（三）子\n五、戊\n（四）续编号不算缺\n")
    assert numbering_gaps(arts) == ["三、", "（二）"]


def test_table_of_contents():
    text = ("某市政策汇编\n\n目 录\n\n一、市级文件\n\n1. 某市人民政府关于甲的通知 (1)\n"
            "2. 某市人民政府办公室关于印发《乙的\n\n措施》的通知\t(5)\n\n正文\n")
    entries, end = parse_toc(text)
    assert entries == [(1, "某市人民政府关于甲的通知"), (2, "某市人民政府办公室关于印发《乙的 措施》的通知")]
    assert text[end:].strip() == "正文"


# ---------------------------------------------------------------- coverage of a small catalogue

SEED = """某市人民政府关于支持企业的通知

各县：
　　为支持企业，现通知如下。
一、减免房租
对承租国有房产的小微企业，免收3个月房租。
二、稳岗返还
对不裁员的企业，返还上年度失业保险费的50%。
三、加强组织领导
各地要加强领导。
四、附则
本通知自印发之日起施行。
"""

RULES = """seed: 001_test.txt
documents:
  doc1: {title: 某市人民政府关于支持企业的通知, date: 2020-03-01}
rules:
  - id: t.rent
    document: doc1
    quote: 对承租国有房产的小微企业，
      免收3个月房租。
  - id: t.refund
    document: doc1
    quote: [对不裁员的企业, 返还上年度失业保险费的50%]
"""


def _catalogue(tmp_path: Path, not_encoded: str | None = None, folder: dict[str, str] | None = None,
               seed: str = SEED, rules: str = RULES):
    (tmp_path / "seeds").mkdir(exist_ok=True)
    (tmp_path / "seeds" / "001_test.txt").write_text(seed, "utf-8")
    rd = tmp_path / "rules"
    rd.mkdir(exist_ok=True)
    (rd / "test.yaml").write_text(rules, "utf-8")
    if not_encoded is not None:
        (rd / "_not_encoded.yaml").write_text(not_encoded, "utf-8")
    for name, text in (folder or {}).items():
        (rd / "_not_encoded.d").mkdir(exist_ok=True)
        (rd / "_not_encoded.d" / name).write_text(text, "utf-8")
    return rd


def _uncovered_titles(rd: Path) -> list[str]:
    return [a.title() for _, _, a in uncovered(build_catalogue(rd))]


def test_rule_quotes_cover_articles_whitespace_insensitively(tmp_path):
    rd = _catalogue(tmp_path)
    assert _uncovered_titles(rd) == ["三、加强组织领导", "四、附则"]
    cat = build_catalogue(rd)
    (row,) = rows(cat)["001_test.txt"]
    assert (row.rules, row.not_encoded, row.articles) == (2, 0, 4)
    assert cat.problems == []


def test_not_encoded_entries_cover_the_rest_from_both_places(tmp_path):
    single = "- {seed: 001_test.txt, document: doc1, quote: 各地要加强领导。, reason: 政府内部要求}\n"
    helper = "- seed: 001_test.txt\n  quote: |-\n    本通知自印发之日起\n    施行。\n  reason: 施行日期\n"
    rd = _catalogue(tmp_path, single, {"helper.yaml": helper})
    cat = build_catalogue(rd)
    assert cat.problems == []
    assert uncovered(cat) == []
    (row,) = rows(cat)["001_test.txt"]
    assert row.not_encoded == 2


def test_a_heading_alone_covers_only_that_article(tmp_path):
    ne = "- {seed: 001_test.txt, document: doc1, quote: 三、加强组织领导, reason: 标题}\n"
    rd = _catalogue(tmp_path, ne)
    assert _uncovered_titles(rd) == ["四、附则"]


@pytest.mark.parametrize("entry, message", [
    ("{seed: 001_test.txt, document: doc1, quote: 对承租国有房产的中型企业免收房租, reason: x}", "not found verbatim"),
    ("{seed: 009_none.txt, quote: 各地要加强领导, reason: x}", "unknown seed"),
    ("{seed: 001_test.txt, quote: 各地要加强领导}", "missing key 'reason'"),
    ("{seed: 001_test.txt, quote: 各地要加强领导, reason: x, reasn: y}", "unknown key 'reasn'"),
    ("{seed: 001_test.txt, document: doc9, quote: 各地要加强领导, reason: x}", "unknown document 'doc9'"),
    ("{seed: 001_test.txt, quote: 各地, reason: x}", "too short"),
    ("{seed: 001_test.txt, quote: '', reason: x}", "non-empty text"),
])
def test_not_encoded_validation(tmp_path, entry, message):
    rd = _catalogue(tmp_path, f"- {entry}\n")
    problems = validate_not_encoded(rd)
    assert len(problems) == 1, problems
    assert message in str(problems[0])
    assert "rules/_not_encoded.yaml: $[0]" in str(problems[0]).replace(str(tmp_path) + "/", "")


def test_not_encoded_validation_of_the_file_shape_and_duplicates(tmp_path):
    rd = _catalogue(tmp_path, "seed: 001_test.txt\n", {
        "a.yaml": "- {seed: 001_test.txt, quote: 各地要加强领导, reason: x}\n",
        "b.yaml": "- {seed: 001_test.txt, quote: 各地要加强领导, reason: y}\n- just text\n",
    })
    text = "\n".join(str(p) for p in validate_not_encoded(rd))
    assert "expected a YAML list" in text
    assert "listed twice" in text
    assert "b.yaml: $[1]: expected a mapping" in text


# a compilation: two documents with the same heading; quotes count where their document is
COMPILATION = """某市政策汇编

目 录

1. 某市人民政府关于甲事项的通知 (1)
2. 某市财政局关于乙事项的通知 (3)

某市人民政府
关于甲事项的通知

一、加强组织领导
甲事项由市政府负责。

某市财政局
关于乙事项的通知

一、加强组织领导
甲事项由市政府负责。
二、资金补助
给予每户1000元补助。
"""

COMPILATION_RULES = """seed: 001_test.txt
documents:
  jia: {title: 某市人民政府关于甲事项的通知, part: 1}
  yi: {title: 某市财政局关于乙事项的通知, part: 2}
rules:
  - {id: t.grant, document: yi, quote: 给予每户1000元补助。}
"""


def test_compilation_documents_and_quotes_stay_in_their_document(tmp_path):
    ne = "- {seed: 001_test.txt, document: jia, quote: 甲事项由市政府负责。, reason: 分工}\n"
    rd = _catalogue(tmp_path, ne, seed=COMPILATION, rules=COMPILATION_RULES)
    cat = build_catalogue(rd)
    sc = cat.seeds["001_test.txt"]
    assert [(d.part, d.keys) for d in sc.documents] == [(1, ["jia"]), (2, ["yi"])]
    assert all(d.start is not None for d in sc.documents)
    r1, r2 = rows(cat)["001_test.txt"]
    assert (r1.rules, r1.not_encoded, r1.articles, len(r1.uncovered)) == (0, 1, 1, 0)
    # the same sentence in document 2 is not covered by an entry that names document 1
    assert (r2.rules, r2.not_encoded, r2.articles) == (1, 0, 2)
    assert [a.title() for a in r2.uncovered] == ["一、加强组织领导"]
    assert cat.problems == []


def test_not_encoded_quote_in_another_document_is_reported(tmp_path):
    ne = "- {seed: 001_test.txt, document: jia, quote: 给予每户1000元补助, reason: x}\n"
    rd = _catalogue(tmp_path, ne, seed=COMPILATION, rules=COMPILATION_RULES)
    (problem,) = validate_not_encoded(rd)
    assert "not inside the text of document" in str(problem) and "2. 某市财政局" in str(problem)


def test_ambiguous_quote_without_document_is_reported(tmp_path):
    ne = "- {seed: 001_test.txt, quote: 甲事项由市政府负责。, reason: x}\n"
    rd = _catalogue(tmp_path, ne, seed=COMPILATION, rules=COMPILATION_RULES)
    (problem,) = validate_not_encoded(rd)
    assert "several documents" in str(problem)


def test_cli_coverage_exit_codes(tmp_path):
    rd = _catalogue(tmp_path)
    runner = CliRunner()
    res = runner.invoke(app, ["rules", "coverage", "--rules", str(rd)])
    assert res.exit_code == 0, res.output
    assert "rules 2, not encoded 0, articles 4, uncovered 2" in res.output
    assert "✗ line    9  三、 加强组织领导" in res.output
    res = runner.invoke(app, ["rules", "coverage", "--rules", str(rd), "--strict"])
    assert res.exit_code == 1
    ne = ("- {seed: 001_test.txt, quote: 各地要加强领导, reason: x}\n"
          "- {seed: 001_test.txt, quote: 本通知自印发之日起施行, reason: x}\n")
    (rd / "_not_encoded.yaml").write_text(ne, "utf-8")
    res = runner.invoke(app, ["rules", "coverage", "--rules", str(rd), "--strict"])
    assert res.exit_code == 0, res.output
    (rd / "_not_encoded.yaml").write_text(ne + "- {seed: 001_test.txt, quote: 不在原文中的一句话, reason: x}\n",
                                          "utf-8")
    res = runner.invoke(app, ["rules", "coverage", "--rules", str(rd), "--strict"])
    assert res.exit_code == 1
    assert "not found verbatim" in res.output


# ---------------------------------------------------------------- the real catalogue


@pytest.fixture(scope="module")
def real():
    return build_catalogue(ROOT / "rules")


def test_every_document_of_the_compilation_is_found(real):
    sc = real.seeds["003_d2efa32a57ff7dc0.txt"]
    assert [d.part for d in sc.documents][:29] == list(range(1, 30))
    assert all(d.start is not None for d in sc.documents)
    starts = [d.start for d in sc.documents]
    assert starts == sorted(starts)


def test_both_hebei_2020_plans_are_found(real):
    docs = real.seeds["000_a77d6f3aee4e2e8b.txt"].documents
    assert [d.keys for d in docs] == [["hebei_services_2020"], ["hebei_consumption_2020"]]
    assert docs[0].start == 0 < docs[1].start


def test_the_henan_seed_is_recognised_as_scrambled(real):
    sc = real.seeds["002_84b1f8e6a4181a87.txt"]
    assert sc.scrambled == {0}
    assert "三、" in sc.gaps[0]


def test_the_real_not_encoded_lists_are_valid(real):
    assert real.problems == [], "\n".join(map(str, real.problems))
