"""Common English nicknames and the given name each stands for (lower case, no accents).

Data only: :func:`cdlm.matching.features.match_record` reads a given name through this table,
so Bob, Rob and Robert compare equal as a "nickname" match. A nickname shared by two names
(Alex: Alexander, Alexandra) is mapped to one of them; the match is evidence, never proof.
"""

from __future__ import annotations

from types import MappingProxyType

_CANONICAL: dict[str, tuple[str, ...]] = {
    "abigail": ("abby", "abbie", "gail"),
    "alexander": ("alex", "alec", "sandy", "xander", "alexandra", "lexi", "sasha"),
    "andrew": ("andy", "drew"),
    "anthony": ("tony", "ant"),
    "barbara": ("barb", "babs"),
    "benjamin": ("ben", "benji", "benny"),
    "catherine": ("kate", "katie", "cathy", "cath", "kathy", "katherine", "kathryn", "kat"),
    "charles": ("charlie", "chuck", "chas"),
    "christine": ("chrissy", "christina", "tina"),
    "christopher": ("chris", "kit", "topher"),
    "daniel": ("dan", "danny"),
    "david": ("dave", "davey"),
    "deborah": ("debbie", "deb", "debra"),
    "donald": ("don", "donny"),
    "edward": ("ed", "eddie", "ted", "teddy", "ned"),
    "elizabeth": ("liz", "lizzie", "beth", "betty", "eliza", "bess", "libby"),
    "frederick": ("fred", "freddie", "freddy"),
    "gregory": ("greg",),
    "henry": ("harry", "hal", "hank"),
    "jacqueline": ("jackie", "jacqui"),
    "james": ("jim", "jimmy", "jamie"),
    "jennifer": ("jen", "jenny", "jenn"),
    "john": ("jack", "johnny", "jon"),
    "jonathan": ("jonny",),
    "joseph": ("joe", "joey"),
    "joshua": ("josh",),
    "kenneth": ("ken", "kenny"),
    "lawrence": ("larry", "laurie"),
    "margaret": ("maggie", "meg", "peggy", "marge", "madge"),
    "matthew": ("matt", "matty"),
    "michael": ("mike", "mick", "mickey", "mikey"),
    "nicholas": ("nick", "nicky", "nico"),
    "patricia": ("pat", "patty", "trish", "tricia"),
    "peter": ("pete",),
    "philip": ("phil", "pip", "phillip"),
    "rebecca": ("becky", "becca", "bex"),
    "richard": ("rich", "rick", "ricky", "dick", "richie"),
    "robert": ("bob", "bobby", "rob", "robbie", "bert"),
    "samuel": ("sam", "sammy"),
    "stephen": ("steve", "stevie", "steven"),
    "susan": ("sue", "susie", "suzy"),
    "thomas": ("tom", "tommy"),
    "timothy": ("tim", "timmy"),
    "victoria": ("vicky", "vicki", "tori"),
    "william": ("bill", "billy", "will", "willy", "liam"),
}

#: Nickname (or variant spelling) → the given name it stands for.
NICKNAMES: MappingProxyType[str, str] = MappingProxyType(
    {nickname: name for name, nicknames in _CANONICAL.items() for nickname in nicknames}
)


def canonical(word: str) -> str:
    """The given name ``word`` stands for (itself when it is not a known nickname)."""
    return NICKNAMES.get(word, word)
