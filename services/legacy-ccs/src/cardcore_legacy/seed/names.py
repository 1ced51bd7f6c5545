"""Reference tables for realistic CCS data: Chinese names, regions, merchants (all GBK-encodable).

The given-name characters deliberately include rare characters that GBK has but GB 2312 lacks
(e.g. 堃 喆 昺 赟 曌 燚 犇 珺 彧 玥 甯 翀), the ones that break naive charset handling.
"""

from __future__ import annotations

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
COMPOUND_SURNAMES = ("欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "令狐", "慕容")
GIVEN_CHARS = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥建国文辉力斌宇浩凯晨轩"
    "子涵欣怡梓萱思雨佳琪雨桐一诺嘉怡博文俊杰天佑志强海峰晓东雪梅丹丹慧琳婷婷"
    "堃喆昺赟曌燚犇珺彧玥甯翀淼鑫垚祎璟暐珩芃婧"
)
RARE_GIVEN_CHARS = "堃喆昺赟曌燚犇珺彧玥甯翀淼垚祎璟暐珩芃"

# Six-digit administrative division codes (GB/T 2260) used in resident IDs.
REGION_CODES = (
    "110101",
    "110105",
    "110108",
    "120101",
    "130102",
    "140105",
    "210102",
    "220102",
    "230102",
    "310101",
    "310104",
    "310115",
    "320102",
    "320505",
    "330102",
    "330106",
    "340102",
    "350102",
    "360102",
    "370102",
    "370202",
    "410102",
    "420102",
    "430102",
    "440103",
    "440106",
    "440305",
    "450102",
    "460105",
    "500103",
    "510104",
    "520102",
    "530102",
    "610102",
    "620102",
    "650102",
)

BRANCHES = (
    "010001",
    "010002",
    "020001",
    "021001",
    "021002",
    "025001",
    "027001",
    "028001",
    "029001",
    "075501",
    "057101",
    "059101",
)

MERCHANTS = (
    ("5411", "北京华联超市"),
    ("5411", "永辉超市（福州店）"),
    ("5812", "海底捞火锅"),
    ("5812", "全聚德烤鸭店"),
    ("5814", "星巴克（国贸店）"),
    ("5541", "中国石化加油站"),
    ("5541", "中国石油加油站"),
    ("4511", "中国国际航空"),
    ("7011", "锦江之星酒店"),
    ("5311", "王府井百货"),
    ("5732", "苏宁易购"),
    ("5999", "京东商城"),
    ("5999", "天猫超市"),
    ("4121", "滴滴出行"),
    ("5912", "老百姓大药房"),
    ("8062", "北京协和医院"),
    ("5651", "优衣库（南京西路店）"),
    ("5977", "屈臣氏"),
    ("7832", "万达影城"),
    ("5811", "喜茶（堃元店）"),
)

# The host archive's code page (cp037) has no Chinese: archived merchant names are Latin text.
ARCHIVE_MERCHANTS = (
    ("5411", "BEIJING HUALIAN SUPERMARKET"),
    ("5411", "YONGHUI SUPERSTORES FUZHOU"),
    ("5812", "HAIDILAO HOT POT"),
    ("5812", "QUANJUDE ROAST DUCK"),
    ("5814", "STARBUCKS GUOMAO"),
    ("5541", "SINOPEC FILLING STATION"),
    ("5541", "PETROCHINA FILLING STATION"),
    ("4511", "AIR CHINA"),
    ("7011", "JINJIANG INN"),
    ("5311", "WANGFUJING DEPARTMENT STORE"),
    ("5732", "SUNING.COM"),
    ("5999", "JD.COM"),
    ("4121", "DIDI CHUXING"),
    ("5912", "LAOBAIXING PHARMACY"),
    ("5977", "WATSONS"),
    ("7832", "WANDA CINEMAS"),
)
