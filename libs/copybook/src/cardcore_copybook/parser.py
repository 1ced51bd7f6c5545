"""Parser for fixed-format COBOL copybooks (data description entries only).

Fixed format is what mainframe copybooks are written in: columns 1-6 are a sequence area and
73-80 an identification area (both often hold garbage and must be ignored), column 7 is the
indicator (``*`` or ``/`` comment, ``-`` continuation), and columns 8-72 hold the source. The
parser first joins the source area into one logical text (resolving continuation lines) while
remembering each character's line number, then tokenises it, splits it into period-terminated
entries and builds the level-number tree.

Everything it does not understand raises ``CopybookSyntaxError`` naming the line and the
offending text: silently guessing a layout would corrupt every record decoded with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from cardcore_copybook.errors import CopybookSyntaxError
from cardcore_copybook.model import (
    Condition,
    ConditionValue,
    Copybook,
    DataItem,
    FieldFormat,
    FieldType,
    Figurative,
    LiteralValue,
    Occurs,
    Usage,
)

_SOURCE_AREA = slice(7, 72)  # columns 8-72
_SOURCE_AREA_WIDTH = 65
_LISTING_DIRECTIVES = frozenset({"EJECT", "SKIP1", "SKIP2", "SKIP3"})

_TOKEN = re.compile(
    r"""
      (?P<space>\s+|[,;](?=\s|$))
    | (?P<literal>(?P<hex>[Xx])?(?:'(?P<single>(?:[^'\n]|'')*)'|"(?P<double>(?:[^"\n]|"")*)"))
    | (?P<unterminated>['"])
    | (?P<word>[^\s'"]+)
    """,
    re.VERBOSE,
)
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_DATA_NAME = re.compile(r"[A-Z0-9]+(?:-+[A-Z0-9]+)*")
_PICTURE_SYMBOL = re.compile(r"([XA9SVP])(?:\((\d+)\))?")
_NUMERIC_PICTURE = re.compile(r"S?(?:V?P+9+|9+P+V?|9*V?9*)")

_USAGES = {
    "DISPLAY": Usage.DISPLAY,
    "COMP": Usage.COMP,
    "COMP-4": Usage.COMP,
    "COMPUTATIONAL": Usage.COMP,
    "COMPUTATIONAL-4": Usage.COMP,
    "BINARY": Usage.COMP,
    "COMP-3": Usage.COMP_3,
    "COMPUTATIONAL-3": Usage.COMP_3,
    "PACKED-DECIMAL": Usage.COMP_3,
    "COMP-5": Usage.COMP_5,
    "COMPUTATIONAL-5": Usage.COMP_5,
}
_UNSUPPORTED_USAGES = frozenset(
    {
        "COMP-1",
        "COMP-2",
        "COMPUTATIONAL-1",
        "COMPUTATIONAL-2",
        "POINTER",
        "PROCEDURE-POINTER",
        "FUNCTION-POINTER",
        "INDEX",
        "NATIONAL",
        "DISPLAY-1",
        "OBJECT",
    }
)
_FIGURATIVES = {
    "SPACE": Figurative.SPACES,
    "SPACES": Figurative.SPACES,
    "ZERO": Figurative.ZEROS,
    "ZEROS": Figurative.ZEROS,
    "ZEROES": Figurative.ZEROS,
    "HIGH-VALUE": Figurative.HIGH_VALUES,
    "HIGH-VALUES": Figurative.HIGH_VALUES,
    "LOW-VALUE": Figurative.LOW_VALUES,
    "LOW-VALUES": Figurative.LOW_VALUES,
    "QUOTE": Figurative.QUOTES,
    "QUOTES": Figurative.QUOTES,
    "NULL": Figurative.NULLS,
    "NULLS": Figurative.NULLS,
}
_CLAUSE_KEYWORDS = frozenset(
    {
        "REDEFINES",
        "PIC",
        "PICTURE",
        "USAGE",
        "SIGN",
        "LEADING",
        "TRAILING",
        "OCCURS",
        "VALUE",
        "VALUES",
        "JUSTIFIED",
        "JUST",
        "SYNCHRONIZED",
        "SYNC",
        "BLANK",
        "ASCENDING",
        "DESCENDING",
        "INDEXED",
        "DEPENDING",
    }
    | _USAGES.keys()
    | _UNSUPPORTED_USAGES
)
_BINARY_MAX_DIGITS = 18
_DECIMAL_MAX_DIGITS = 31


@dataclass(frozen=True)
class _Token:
    kind: str  # "word", "literal" or "period"
    text: str
    line: int
    literal: str | bytes | None = None


def parse_copybook(text: str) -> Copybook:
    """Parse fixed-format copybook source into a ``Copybook`` tree.

    Raises ``CopybookSyntaxError`` (with the line number and offending text) for anything that
    is malformed or unsupported.
    """
    logical_text, line_of = _logical_source(text)
    entries = _split_entries(_tokenize(logical_text, line_of))
    records: list[DataItem] = []
    open_items: list[DataItem] = []
    last_item: DataItem | None = None
    for entry in entries:
        parsed = _parse_entry(entry)
        if parsed is None:  # level 66 RENAMES: an alias, it describes no storage
            continue
        if isinstance(parsed, Condition):
            if last_item is None:
                raise CopybookSyntaxError(parsed.line, parsed.name, "88-level before any item")
            last_item.conditions.append(parsed)
            continue
        _attach(parsed, records, open_items)
        last_item = parsed
    if not records:
        raise CopybookSyntaxError(1, text[:40], "no level-01 or level-77 record in the copybook")
    for record in records:
        _resolve_formats(record)
        _resolve_occurs_depending(record)
    return Copybook(records=tuple(records))


# --- source area and tokens -------------------------------------------------------------------


def _logical_source(text: str) -> tuple[str, list[int]]:
    """Columns 8-72 of every source line joined, continuations resolved, plus each char's line."""
    chars: list[str] = []
    line_of: list[int] = []
    open_quote: str | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        indicator = raw[6] if len(raw) > 6 else " "
        # Padded to column 72: a literal continued on the next line includes those spaces.
        area = raw[_SOURCE_AREA].ljust(_SOURCE_AREA_WIDTH)
        if indicator in "*/":
            continue
        if indicator == "-":
            if not chars:
                raise CopybookSyntaxError(number, raw, "continuation line with nothing to continue")
            body = area.lstrip()
            if open_quote is not None:
                if not body.startswith(open_quote):
                    raise CopybookSyntaxError(
                        number, raw, f"a continued literal must resume with {open_quote}"
                    )
                body = body[1:]
            else:  # a continued word: join it to the previous line's last word
                while chars and chars[-1] == " ":
                    chars.pop()
                    line_of.pop()
        elif indicator == " ":
            if not area.strip() or area.strip().rstrip(".").upper() in _LISTING_DIRECTIVES:
                continue
            body = "\n" + area
        else:
            raise CopybookSyntaxError(
                number, raw, f"unsupported indicator {indicator!r} in column 7"
            )
        open_quote = _quote_state_after(body, open_quote)
        chars.extend(body)
        line_of.extend([number] * len(body))
    return "".join(chars), line_of


def _quote_state_after(body: str, open_quote: str | None) -> str | None:
    for char in body:
        if open_quote is None:
            if char in "'\"":
                open_quote = char
        elif char == open_quote:
            open_quote = None  # a doubled quote re-opens on the next character
    return open_quote


def _tokenize(text: str, line_of: list[int]) -> list[_Token]:
    tokens: list[_Token] = []
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup
        line = line_of[match.start()]
        if kind == "space":
            continue
        if kind == "unterminated":
            raise CopybookSyntaxError(
                line, text[match.start() :].split("\n")[0].rstrip(), "unterminated literal"
            )
        if kind == "word":
            word = match.group().rstrip(",;")
            if word.endswith("."):
                if len(word) > 1:
                    tokens.append(_Token("word", word[:-1], line))
                tokens.append(_Token("period", ".", line))
            elif word:
                tokens.append(_Token("word", word, line))
            continue
        tokens.append(_literal_token(match, line))
    return tokens


def _literal_token(match: re.Match[str], line: int) -> _Token:
    single, double = match.group("single"), match.group("double")
    content = single.replace("''", "'") if single is not None else double.replace('""', '"')
    if match.group("hex"):
        try:
            return _Token("literal", match.group(), line, bytes.fromhex(content))
        except ValueError:
            raise CopybookSyntaxError(line, match.group(), "invalid hexadecimal literal") from None
    return _Token("literal", match.group(), line, content)


def _split_entries(tokens: list[_Token]) -> list[list[_Token]]:
    entries: list[list[_Token]] = []
    current: list[_Token] = []
    for token in tokens:
        if token.kind == "period":
            if not current:
                raise CopybookSyntaxError(token.line, ".", "empty entry (stray period)")
            entries.append(current)
            current = []
        else:
            current.append(token)
    if current:
        raise CopybookSyntaxError(
            current[-1].line, current[-1].text, "entry not terminated by a period"
        )
    return entries


# --- one data description entry ---------------------------------------------------------------


class _Cursor:
    """Walks the tokens of one entry, with error reporting at the current token."""

    def __init__(self, tokens: list[_Token]) -> None:
        self._tokens = tokens
        self._position = 0

    def peek_word(self) -> str | None:
        token = self.peek()
        return token.text.upper() if token is not None and token.kind == "word" else None

    def peek(self) -> _Token | None:
        return self._tokens[self._position] if self._position < len(self._tokens) else None

    def take(self, expected: str) -> _Token:
        token = self.peek()
        if token is None:
            last = self._tokens[-1]
            raise CopybookSyntaxError(last.line, last.text, f"entry ends where {expected} is due")
        self._position += 1
        return token

    def take_word(self, expected: str) -> str:
        token = self.take(expected)
        if token.kind != "word":
            raise self.error(token, f"expected {expected}")
        return token.text.upper()

    def skip_optional(self, *words: str) -> None:
        if self.peek_word() in words:
            self._position += 1

    def error(self, token: _Token, problem: str) -> CopybookSyntaxError:
        return CopybookSyntaxError(token.line, token.text, problem)


def _parse_entry(tokens: list[_Token]) -> DataItem | Condition | None:
    cursor = _Cursor(tokens)
    level_token = cursor.take("a level number")
    if level_token.kind != "word" or not level_token.text.isdigit():
        raise cursor.error(level_token, "expected a level number")
    level = int(level_token.text)
    if level == 66:
        return None
    if level == 88:
        return _parse_condition(cursor, level_token.line)
    if not (1 <= level <= 49 or level == 77):
        raise cursor.error(level_token, "level number must be 01-49, 66, 77 or 88")
    name = "FILLER"
    name_word = cursor.peek_word()
    if name_word is not None and name_word not in _CLAUSE_KEYWORDS:
        name = _data_name(cursor)
    item = DataItem(level=1 if level == 77 else level, name=name, line=level_token.line)
    while cursor.peek() is not None:
        _parse_clause(cursor, item)
    return item


def _data_name(cursor: _Cursor) -> str:
    token = cursor.take("a data name")
    name = token.text.upper()
    if token.kind != "word" or not _DATA_NAME.fullmatch(name) or name.isdigit():
        raise cursor.error(token, "invalid data name")
    return name


def _qualified_name(cursor: _Cursor) -> str:
    """``name [OF|IN name]...`` as written, normalised to ``A OF B``."""
    parts = [_data_name(cursor)]
    while cursor.peek_word() in ("OF", "IN"):
        cursor.take("OF")
        parts.append(_data_name(cursor))
    return " OF ".join(parts)


def _parse_clause(cursor: _Cursor, item: DataItem) -> None:
    token = cursor.take("a clause")
    word = token.text.upper() if token.kind == "word" else ""
    if word == "REDEFINES":
        item.redefines = _data_name(cursor)
    elif word in ("PIC", "PICTURE"):
        cursor.skip_optional("IS")
        picture = cursor.take("a PICTURE string")
        if picture.kind != "word":
            raise cursor.error(picture, "expected a PICTURE string")
        item.picture = picture.text.upper()
    elif word == "USAGE":
        cursor.skip_optional("IS")
        usage = cursor.take("a usage")
        _set_usage(cursor, item, usage)
    elif word in _USAGES or word in _UNSUPPORTED_USAGES:
        _set_usage(cursor, item, token)
    elif word in ("SIGN", "LEADING", "TRAILING"):
        if word == "SIGN":
            cursor.skip_optional("IS")
            word = cursor.take_word("LEADING or TRAILING")
            if word not in ("LEADING", "TRAILING"):
                raise cursor.error(token, "expected LEADING or TRAILING after SIGN")
        item.sign_leading = word == "LEADING"
        if cursor.peek_word() == "SEPARATE":
            cursor.take("SEPARATE")
            cursor.skip_optional("CHARACTER")
            item.sign_separate = True
    elif word == "OCCURS":
        item.occurs = _parse_occurs(cursor, token)
    elif word in ("VALUE", "VALUES"):
        cursor.skip_optional("IS", "ARE")
        cursor.skip_optional("ALL")
        _parse_literal(cursor)  # initial values describe no storage: checked, then ignored
    elif word in ("JUSTIFIED", "JUST"):
        cursor.skip_optional("RIGHT")
    elif word in ("SYNCHRONIZED", "SYNC"):
        cursor.skip_optional("LEFT", "RIGHT")
    elif word == "BLANK":
        cursor.skip_optional("WHEN")
        if cursor.take_word("ZERO") not in ("ZERO", "ZEROS", "ZEROES"):
            raise cursor.error(token, "expected BLANK WHEN ZERO")
    else:
        raise cursor.error(token, "unexpected text (not a supported clause)")


def _set_usage(cursor: _Cursor, item: DataItem, token: _Token) -> None:
    word = token.text.upper()
    if word in _UNSUPPORTED_USAGES:
        raise cursor.error(token, f"USAGE {word} is not supported")
    if token.kind != "word" or word not in _USAGES:
        raise cursor.error(token, "unknown USAGE")
    item.usage = _USAGES[word]


def _parse_occurs(cursor: _Cursor, occurs_token: _Token) -> Occurs:
    first = _integer(cursor, "an OCCURS count")
    minimum, maximum = first, first
    if cursor.peek_word() == "TO":
        cursor.take("TO")
        maximum = _integer(cursor, "the OCCURS maximum")
    cursor.skip_optional("TIMES")
    depending_on: str | None = None
    if cursor.peek_word() == "DEPENDING":
        cursor.take("DEPENDING")
        cursor.skip_optional("ON")
        depending_on = _qualified_name(cursor)
    if (maximum != minimum) != (depending_on is not None):
        raise cursor.error(occurs_token, "OCCURS m TO n needs DEPENDING ON (and vice versa)")
    if maximum < 1 or minimum > maximum:
        raise cursor.error(occurs_token, f"invalid OCCURS range {minimum} TO {maximum}")
    while cursor.peek_word() in ("ASCENDING", "DESCENDING", "INDEXED"):
        cursor.take("KEY or INDEXED")
        cursor.skip_optional("KEY", "BY")
        cursor.skip_optional("IS")
        _data_name(cursor)  # key and index names describe no storage
        while cursor.peek_word() is not None and cursor.peek_word() not in _CLAUSE_KEYWORDS:
            _data_name(cursor)
    return Occurs(min_count=minimum, max_count=maximum, depending_on=depending_on)


def _integer(cursor: _Cursor, expected: str) -> int:
    token = cursor.take(expected)
    if token.kind != "word" or not token.text.isdigit():
        raise cursor.error(token, f"expected {expected} (an unsigned integer)")
    return int(token.text)


def _parse_condition(cursor: _Cursor, line: int) -> Condition:
    name = _data_name(cursor)
    keyword = cursor.take_word("VALUE")
    if keyword not in ("VALUE", "VALUES"):
        raise CopybookSyntaxError(line, keyword, "an 88-level needs a VALUE clause")
    cursor.skip_optional("IS", "ARE")
    values: list[ConditionValue] = []
    while cursor.peek() is not None:
        low = _parse_literal(cursor)
        high: LiteralValue | None = None
        if cursor.peek_word() in ("THRU", "THROUGH"):
            cursor.take("THRU")
            high = _parse_literal(cursor)
        values.append(ConditionValue(low, high))
    if not values:
        raise CopybookSyntaxError(line, name, "an 88-level needs at least one value")
    return Condition(name=name, values=tuple(values), line=line)


def _parse_literal(cursor: _Cursor) -> LiteralValue:
    token = cursor.take("a literal")
    if token.kind == "literal":
        assert token.literal is not None
        return token.literal
    word = token.text.upper()
    if word in _FIGURATIVES:
        return _FIGURATIVES[word]
    if _NUMBER.fullmatch(word):
        return Decimal(word) if "." in word else int(word)
    raise cursor.error(token, "expected a literal")


# --- the level tree ---------------------------------------------------------------------------


def _attach(item: DataItem, records: list[DataItem], open_items: list[DataItem]) -> None:
    """Place ``item`` under the nearest open item with a lower level number."""
    if item.level == 1:
        siblings = records
        open_items.clear()
    else:
        while open_items and open_items[-1].level >= item.level:
            open_items.pop()
        if not open_items:
            raise CopybookSyntaxError(item.line, item.name, "item outside any level-01 record")
        parent = open_items[-1]
        if parent.picture is not None:
            raise CopybookSyntaxError(
                item.line, item.name, f"{parent.name} has a PICTURE, so it cannot have subordinates"
            )
        siblings = parent.children
        if siblings and siblings[0].level != item.level:
            raise CopybookSyntaxError(
                item.line,
                item.name,
                f"level {item.level:02d} does not match its sibling level {siblings[0].level:02d}",
            )
        item.parent = parent
    if not item.is_filler and any(sibling.name == item.name for sibling in siblings):
        raise CopybookSyntaxError(item.line, item.name, "duplicate data name in the same group")
    if item.redefines is not None:
        item.redefines = _redefined_original(item, siblings)
    siblings.append(item)
    open_items.append(item)


def _redefined_original(item: DataItem, siblings: list[DataItem]) -> str:
    """The name of the storage's original item; REDEFINES must name the one just before."""
    for sibling in reversed(siblings):
        if sibling.name == item.redefines:
            return sibling.redefines or sibling.name
        if sibling.redefines is None:
            break
    raise CopybookSyntaxError(
        item.line,
        f"REDEFINES {item.redefines}",
        "must name the preceding item at the same level (or an earlier redefinition of it)",
    )


def _resolve_formats(record: DataItem) -> None:
    for item in record.walk():
        if item.occurs is not None and item.parent is None:
            raise CopybookSyntaxError(item.line, item.name, "OCCURS is not allowed on level 01/77")
        inherited_usage = next((a.usage for a in item.ancestors() if a.usage is not None), None)
        if item.usage is not None and inherited_usage not in (None, item.usage):
            raise CopybookSyntaxError(
                item.line,
                item.name,
                f"USAGE {item.usage} conflicts with group USAGE {inherited_usage}",
            )
        if item.children:
            continue
        if item.picture is None:
            raise CopybookSyntaxError(item.line, item.name, "elementary item without a PICTURE")
        sign_source = item if item.sign_leading is not None else None
        if sign_source is None:
            sign_source = next((a for a in item.ancestors() if a.sign_leading is not None), None)
        item.format = _field_format(
            item,
            item.usage or inherited_usage or Usage.DISPLAY,
            sign_source,
            sign_is_explicit=sign_source is item,
        )


def _field_format(
    item: DataItem, usage: Usage, sign_source: DataItem | None, *, sign_is_explicit: bool
) -> FieldFormat:
    assert item.picture is not None
    picture = item.picture

    def error(problem: str) -> CopybookSyntaxError:
        return CopybookSyntaxError(item.line, f"{item.name} PIC {picture}", problem)

    try:
        symbols = _expand_picture(picture)
    except ValueError as problem:
        raise error(str(problem)) from None
    if set(symbols) <= {"X", "A", "9"} and set(symbols) & {"X", "A"}:
        if usage is not Usage.DISPLAY:
            raise error(f"an alphanumeric item cannot be USAGE {usage}")
        if sign_is_explicit:
            raise error("SIGN clause on an alphanumeric item")
        return FieldFormat(FieldType.ALPHANUMERIC, usage, picture, length=len(symbols))
    if not _NUMERIC_PICTURE.fullmatch(symbols) or "9" not in symbols:
        raise error("unsupported PICTURE (edited pictures and misplaced S, V or P are unsupported)")
    signed = symbols.startswith("S")
    body = symbols.removeprefix("S")
    digits = body.count("9")
    point = body.find("V")
    if point < 0:  # no V: the point is left of leading Ps, else at the right end
        point = 0 if body.startswith("P") else len(body)
    left, right = body[:point], body[point:].replace("V", "")
    scale = right.count("9") + right.count("P") - left.count("P")
    if sign_source is not None and not (signed and usage is Usage.DISPLAY):
        if sign_is_explicit:
            raise error("SIGN clause needs a signed numeric DISPLAY item")
        sign_source = None  # a group's SIGN clause applies to its signed DISPLAY items only
    if usage is Usage.DISPLAY or usage is Usage.COMP_3:
        if digits > _DECIMAL_MAX_DIGITS:
            raise error(f"more than {_DECIMAL_MAX_DIGITS} digits")
    elif digits > _BINARY_MAX_DIGITS:
        raise error(f"a binary item holds at most {_BINARY_MAX_DIGITS} digits")
    sign_leading = bool(sign_source is not None and sign_source.sign_leading)
    sign_separate = sign_source is not None and sign_source.sign_separate
    if usage is Usage.DISPLAY:
        field_type, length = FieldType.ZONED, digits + (1 if sign_separate else 0)
    elif usage is Usage.COMP_3:
        field_type, length = FieldType.PACKED, digits // 2 + 1
    else:
        field_type, length = FieldType.BINARY, 2 if digits <= 4 else 4 if digits <= 9 else 8
    return FieldFormat(
        field_type,
        usage,
        picture,
        length=length,
        digits=digits,
        scale=scale,
        signed=signed,
        sign_leading=sign_leading,
        sign_separate=sign_separate,
    )


def _expand_picture(picture: str) -> str:
    """``S9(3)V99`` -> ``S999V99``; raises ``ValueError`` for symbols we do not support."""
    expanded: list[str] = []
    position = 0
    while position < len(picture):
        match = _PICTURE_SYMBOL.match(picture, position)
        if match is None:
            raise ValueError(f"unsupported PICTURE symbol {picture[position]!r}")
        repeat = int(match.group(2)) if match.group(2) else 1
        if repeat < 1:
            raise ValueError("PICTURE repeat count must be at least 1")
        expanded.append(match.group(1) * repeat)
        position = match.end()
    return "".join(expanded)


def _resolve_occurs_depending(record: DataItem) -> None:
    """Link each ``DEPENDING ON`` to its object and enforce the rules that keep offsets computable.

    COBOL requires the object to be an integer that is not itself variably located (so it can
    be read before the table's size is known) and forbids variable tables inside REDEFINES.
    """
    in_order = list(record.walk())
    position = {item: index for index, item in enumerate(in_order)}
    variable_tables = [item for item in in_order if item.occurs and item.occurs.variable]
    for table in variable_tables:
        assert table.occurs is not None and table.occurs.depending_on is not None
        here = f"{table.name} OCCURS DEPENDING ON {table.occurs.depending_on}"
        chain = [table, *table.ancestors()][:-1]  # up to, not including, the 01 record
        if any(item.redefines is not None or _is_redefined(item) for item in chain):
            raise CopybookSyntaxError(table.line, here, "a variable table cannot be in a REDEFINES")
        wanted = Copybook(records=(record,))
        try:
            count_item = wanted.find(table.occurs.depending_on)
        except ValueError as error:
            raise CopybookSyntaxError(table.line, here, str(error)) from None
        count_format = count_item.format
        if (
            count_format is None
            or count_format.type is FieldType.ALPHANUMERIC
            or count_format.scale
        ):
            raise CopybookSyntaxError(table.line, here, "the object must be an integer item")
        if count_item.occurs or any(a.occurs for a in count_item.ancestors()):
            raise CopybookSyntaxError(table.line, here, "the object cannot be in a table")
        if position[count_item] > position[variable_tables[0]]:
            raise CopybookSyntaxError(
                table.line, here, "the object must precede every variable-length table"
            )
        table.depending_on_item = count_item


def _is_redefined(item: DataItem) -> bool:
    siblings = item.parent.children if item.parent is not None else []
    return any(sibling.redefines == item.name for sibling in siblings)
