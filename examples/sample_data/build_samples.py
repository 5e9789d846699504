"""Write the hand-made sample corpora of `examples/sample_data/` from the annotated sentences below.

Every sentence here was written for this project (none comes from a real data set). Markup:
`[text|TYPE]` marks an entity. Run from the repository root to regenerate the files:

    python examples/sample_data/build_samples.py

ROCLING labelling conventions (Traditional Chinese, the 10 ROCLING types):
    BODY   body parts, organs, tissues: 胃, 肝臟, 膝蓋, 血管
    SYMP   symptoms, a body part + complaint as one span: 頭痛, 喉嚨痛, 腰痠, 發燒
    INST   instruments and devices: 血壓計, 血糖機, 助聽器, 輪椅
    EXAM   examinations and measured indicators: 胃鏡檢查, 心電圖, 糖化血色素
    CHEM   chemicals and nutrients in the body or food: 膽固醇, 尿酸, 咖啡因, 鈣
    DISE   diseases: 糖尿病, 高血壓, 痛風, 胃潰瘍
    DRUG   medicines: 普拿疼, 胰島素, 抗生素, 降血壓藥
    SUPP   supplements: 魚油, 益生菌, 維生素Ｄ, 葉黃素
    TREAT  treatments and therapies: 手術, 復健, 洗腎, 飲食控制
    TIME   times, durations, frequencies: 三天, 每天, 飯後, 睡前
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "src"))

from mamba_ner.data.bio import spans_to_tags
from mamba_ner.data.brat import write_brat
from mamba_ner.data.conll import write_conll
from mamba_ner.data.records import Sentence
from mamba_ner.data.rocling import write_rocling

ROCLING_TRAIN = """
[頭痛|SYMP]可以吃[普拿疼|DRUG]嗎？
我[每天|TIME]早上都會[頭暈|SYMP]，需要做[血液檢查|EXAM]嗎？
[糖尿病|DISE]患者要定期量[血糖|EXAM]，並在[飯前|TIME]注射[胰島素|DRUG]。
醫師建議[高血壓|DISE]病人每天早晚用[血壓計|INST]量[血壓|EXAM]。
[胃潰瘍|DISE]常見的症狀是[上腹痛|SYMP]和[胃酸逆流|SYMP]。
長期喝酒會傷害[肝臟|BODY]，也可能造成[脂肪肝|DISE]。
[維生素Ｄ|SUPP]可以幫助身體吸收[鈣|CHEM]，預防[骨質疏鬆症|DISE]。
孩子[發燒|SYMP]超過[三天|TIME]應該就醫。
[咳嗽|SYMP]和[喉嚨痛|SYMP]可能是[感冒|DISE]的早期症狀。
[痛風|DISE]發作時[腳趾|BODY]會[紅腫熱痛|SYMP]，要減少[尿酸|CHEM]的來源。
做完[胃鏡檢查|EXAM]後，[兩小時|TIME]內不要進食。
[膝蓋|BODY]退化的長者可以透過[復健|TREAT]改善[關節疼痛|SYMP]。
[益生菌|SUPP]有助於調整[腸道|BODY]菌叢，改善[便秘|SYMP]。
服用[抗生素|DRUG]期間，不要自行停藥。
[失眠|SYMP]的人[睡前|TIME]應避免攝取[咖啡因|CHEM]。
醫師說我的[膽固醇|CHEM]太高，要開始[飲食控制|TREAT]。
[氣喘|DISE]病人外出時要隨身攜帶[支氣管擴張劑|DRUG]。
[心電圖|EXAM]顯示[心跳|EXAM]不規則，可能是[心律不整|DISE]。
老人家走路時使用[拐杖|INST]可以減少跌倒。
[魚油|SUPP]含有[Ｏｍｅｇａ－３脂肪酸|CHEM]，對[心血管|BODY]有益。
[貧血|DISE]的女性常覺得[疲倦|SYMP]，可以多吃含[鐵|CHEM]的食物。
[腎臟|BODY]功能不好的病人可能需要[洗腎|TREAT]。
[皮膚|BODY]出現[紅疹|SYMP]又很[癢|SYMP]，可能是[過敏|DISE]。
[糖化血色素|EXAM]可以反映過去[三個月|TIME]的[血糖|EXAM]控制情形。
[阿斯匹靈|DRUG]要在[飯後|TIME]服用，以免刺激[胃|BODY]。
[流感|DISE]高峰期前建議接種[流感疫苗|DRUG]。
[眼睛乾澀|SYMP]的人可以補充[葉黃素|SUPP]。
[高血壓|DISE]患者應減少[鈉|CHEM]的攝取。
[腰痠|SYMP]已經持續[兩週|TIME]，醫師安排[核磁共振|EXAM]。
[乳癌|DISE]病人術後通常需要接受[化療|TREAT]或[放射治療|TREAT]。
[血糖機|INST]的試紙要放在陰涼乾燥的地方。
[憂鬱症|DISE]的患者常有[失眠|SYMP]和[食慾不振|SYMP]的情形。
[腹瀉|SYMP]時要補充水分和[電解質|CHEM]。
長時間使用電腦容易造成[肩頸痠痛|SYMP]。
[骨密度檢查|EXAM]可以早期發現[骨質疏鬆症|DISE]。
年長者可以補充[鈣片|SUPP]和[維生素Ｄ|SUPP]。
[類固醇|DRUG]藥膏不宜長期塗抹在[臉部|BODY]。
聽力退化的長者可以配戴[助聽器|INST]。
[胸悶|SYMP]和[呼吸困難|SYMP]時要立刻就醫。
[針灸|TREAT]可以緩解部分[慢性疼痛|SYMP]。
[每天|TIME]運動[三十分鐘|TIME]有助於控制體重。
吃太多甜食會讓[血液|BODY]中的[葡萄糖|CHEM]升高。
[胃痛|SYMP]的時候可以先服用[制酸劑|DRUG]。
[手術|TREAT]後需要住院觀察[一天|TIME]。
[腎臟|BODY]功能檢查包括[尿液檢查|EXAM]和[抽血|EXAM]。
醫師替他開了[降血壓藥|DRUG]，要求[每天|TIME]固定時間服用。
[關節腫脹|SYMP]可能是[類風濕性關節炎|DISE]造成的。
[體溫計|INST]量到三十八度就算[發燒|SYMP]。
[噁心|SYMP]和[嘔吐|SYMP]是[化療|TREAT]常見的副作用。
嬰兒的[奶瓶|INST]要定期消毒。
多喝水可以預防[泌尿道感染|DISE]。
[牙齦出血|SYMP]可能和缺乏[維生素Ｃ|SUPP]有關。
[白內障|DISE]可以透過[手術|TREAT]治療。
[咖啡因|CHEM]攝取太多會造成[心悸|SYMP]。
[安眠藥|DRUG]不能和[酒精|CHEM]一起使用。
[感冒|DISE]時多休息，[一週|TIME]左右就會好轉。
[鼻塞|SYMP]和[流鼻水|SYMP]讓他整晚睡不好。
[超音波|EXAM]檢查發現[膽結石|DISE]。
使用[輪椅|INST]的病人要注意[皮膚|BODY]是否出現[壓瘡|DISE]。
[葡萄糖胺|SUPP]常被用來保養[關節|BODY]。
"""

ROCLING_DEV = """
[頭痛|SYMP]持續[一週|TIME]以上應該就醫。
[糖尿病|DISE]病人要注意[腳|BODY]部的傷口。
我[每天|TIME]早上用[血壓計|INST]量[血壓|EXAM]。
[胃潰瘍|DISE]的人要少攝取[咖啡因|CHEM]。
[發燒|SYMP]時可以服用[普拿疼|DRUG]退燒。
[便秘|SYMP]的人可以多吃蔬菜和[益生菌|SUPP]。
醫師安排他做[胃鏡檢查|EXAM]。
[高血壓|DISE]患者要按時服用[降血壓藥|DRUG]。
[膝蓋|BODY]受傷後需要做[復健|TREAT]。
[失眠|SYMP]的人[睡前|TIME]不要使用手機。
[骨質疏鬆症|DISE]的長者要補充[鈣|CHEM]。
[咳嗽|SYMP]超過[三週|TIME]要照[胸部Ｘ光|EXAM]。
[眼睛疲勞|SYMP]可以補充[葉黃素|SUPP]。
[貧血|DISE]的人容易[頭暈|SYMP]。
[痛風|DISE]患者要少吃海鮮以降低[尿酸|CHEM]。
"""

ROCLING_TEST = """
[喉嚨痛|SYMP]可以吃[消炎藥|DRUG]緩解嗎？
[糖尿病|DISE]患者要定期檢查[糖化血色素|EXAM]。
[腰痠|SYMP]的人可以試試[針灸|TREAT]。
[流感|DISE]病人常有[發燒|SYMP]和[肌肉痠痛|SYMP]。
[飯後|TIME]服用[阿斯匹靈|DRUG]比較不傷[胃|BODY]。
[肝臟|BODY]不好的人不要喝含[酒精|CHEM]的飲料。
長者可以使用[助聽器|INST]改善聽力。
[魚油|SUPP]可以幫助降低[三酸甘油酯|CHEM]。
[心悸|SYMP]時應該做[心電圖|EXAM]。
[氣喘|DISE]發作時要使用[吸入劑|DRUG]。
[皮膚癢|SYMP]可能是[濕疹|DISE]。
[腹瀉|SYMP]超過[兩天|TIME]要就醫。
[洗腎|TREAT]病人要控制[鉀|CHEM]的攝取。
[每天|TIME]量[血糖|EXAM]可以使用[血糖機|INST]。
[憂鬱症|DISE]可以透過藥物和[心理治療|TREAT]改善。
"""

BRAT_DOCUMENTS = {
    "visit_001": """患者,男,56岁。[2型糖尿病|Disease]病史[8年|Duration],长期口服[二甲双胍|Drug]控制血糖。
近[1个月|Duration]出现[口渴|Symptom]、[多尿|Symptom],[空腹血糖|Test][11.2mmol/L|Test_Value]。
查体:[双下肢|Anatomy]轻度水肿。建议加用[胰岛素|Drug]治疗,[每日|Frequency]监测血糖。""",
    "visit_002": """患者,女,63岁,因[头晕|Symptom][3天|Duration]就诊。既往[高血压|Disease]病史,
服用[氨氯地平|Drug][每日一次|Frequency]。测[血压|Test][160/95mmHg|Test_Value]。
[心电图|Test]未见明显异常。嘱[低盐饮食|Treatment],调整降压药剂量。""",
    "guideline_003": """[糖化血红蛋白|Test]是评价长期血糖控制的重要指标。对于新诊断的[2型糖
尿病|Disease]患者,一般建议控制在[7%|Test_Value]以下。合并[冠心病|Disease]或反复[低血糖|Disease]的老年患者,
目标值可放宽至[8%|Test_Value]。[二甲双胍|Drug]为一线用药,不耐受者可选用[磺脲类|Drug]药物。""",
    "visit_004": """患者主诉[胸闷|Symptom]、[气短|Symptom][2周|Duration],活动后加重。[胸部CT|Test]提示
[右肺|Anatomy]下叶感染。予[头孢曲松|Drug]静脉滴注[每日两次|Frequency],疗程[7天|Duration]。""",
    "visit_005": """[糖尿病肾病|Disease]患者,[尿微量白蛋白|Test]升高,[血肌酐|Test][132μmol/L|Test_Value]。
建议[限制蛋白摄入|Treatment],加用[缬沙坦|Drug]保护[肾脏|Anatomy],[3个月|Duration]后复查。""",
}

CONLL_DOCUMENTS = [
    """
[Maria Santos|PER] , a nurse from [Porto|LOC] , joined [Doctors Without Borders|ORG] in 2019 .
She worked for two years at a clinic near [Lisbon|LOC] .
[Santos|PER] said the [Portuguese|MISC] health ministry had sent extra staff .
The clinic is funded by the [Gulbenkian Foundation|ORG] .
""",
    """
[Northwind Pharma|ORG] shares rose 4 percent in [Frankfurt|LOC] on Tuesday .
Chief executive [Anna Keller|PER] said sales of its insulin pens grew in [Asia|LOC] .
Analysts at [Baltic Capital|ORG] raised their target price .
The company plans to open a plant in [Poland|LOC] next year .
[Keller|PER] spoke at the [European|MISC] diabetes congress in [Vienna|LOC] .
The [World Health Organization|ORG] welcomed the move .
""",
    """
[Tom Okafor|PER] scored twice as [Lagos United|ORG] beat [Kano Stars|ORG] 3-1 .
The [Nigerian|MISC] striker has now scored nine goals this season .
Coach [Peter Hall|PER] praised the defence after the match in [Lagos|LOC] .
[Kano Stars|ORG] remain fourth in the league .
The next round will be played in [Abuja|LOC] on Sunday .
""",
    """
A new hospital opened in [Nairobi|LOC] with support from the [Kenyan|MISC] government .
[Grace Wanjiru|PER] , the director , said it will treat 500 patients a day .
The [Red Cross|ORG] donated two ambulances .
Minister [David Mwangi|PER] attended the opening .
""",
]


def parse(markup: str) -> tuple[str, list[tuple[int, int, str]]]:
    """`"[頭痛|SYMP]可以"` -> (`"頭痛可以"`, `[(0, 2, "SYMP")]`) in character offsets."""
    text, spans, position = "", [], 0
    for match in re.finditer(r"\[([^|\]]+)\|([A-Za-z_]+)\]", markup):
        text += markup[position : match.start()]
        spans.append((len(text), len(text) + len(match.group(1)), match.group(2)))
        text += match.group(1)
        position = match.end()
    return text + markup[position:], spans


def rocling_sentences(block: str, doc_id: str) -> list[Sentence]:
    sentences = []
    for line in filter(None, (line.strip() for line in block.splitlines())):
        text, spans = parse(line)
        sentences.append(Sentence(list(text), spans_to_tags(len(text), spans), doc_id, len(sentences)))
    return sentences


def conll_sentences(block: str, doc_id: str) -> list[Sentence]:
    sentences = []
    for line in filter(None, (line.strip() for line in block.splitlines())):
        text, spans = parse(line)
        tokens, starts, position = text.split(" "), [], 0
        for token in tokens:
            starts.append(position)
            position += len(token) + 1
        token_spans = [
            (starts.index(s), next(i for i, t in enumerate(starts) if t + len(tokens[i]) == e) + 1, label)
            for s, e, label in spans
        ]
        sentences.append(Sentence(tokens, spans_to_tags(len(tokens), token_spans), doc_id, len(sentences)))
    return sentences


def main(out_dir: Path = HERE) -> None:
    rocling = out_dir / "rocling"
    rocling.mkdir(parents=True, exist_ok=True)
    for name, block in (("train", ROCLING_TRAIN), ("dev", ROCLING_DEV), ("test", ROCLING_TEST)):
        write_rocling(rocling_sentences(block, name), rocling / f"{name}.txt")
    for doc_id, markup in BRAT_DOCUMENTS.items():
        text, spans = parse(markup)
        write_brat(doc_id, text + "\n", spans, out_dir / "brat")
    documents = [s for k, block in enumerate(CONLL_DOCUMENTS) for s in conll_sentences(block, f"sample#{k}")]
    (out_dir / "conll").mkdir(parents=True, exist_ok=True)
    write_conll(documents, out_dir / "conll" / "sample.conll")


if __name__ == "__main__":
    main()
