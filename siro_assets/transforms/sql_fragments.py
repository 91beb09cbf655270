"""SQL fragments that more than one derived table uses, with public names.

Each is a SQL expression text; the callers interpolate it into their SELECTs.
"""

from __future__ import annotations

# A reference counts as a link when it names the object on at least one side.
IS_CRM_REF = "{ref} IS NOT NULL AND ({ref}.id IS NOT NULL OR {ref}.externalId IS NOT NULL)"

# json_type() names DuckDB's parse of the value; map them onto the API's vocabulary.
# OBJECT is not something the API documents; it is kept visible as 'object' rather
# than silently folded into another type.
VALUE_TYPE = """
CASE json_type(value)
    WHEN 'VARCHAR' THEN 'string'
    WHEN 'BIGINT' THEN 'number'
    WHEN 'UBIGINT' THEN 'number'
    WHEN 'DOUBLE' THEN 'number'
    WHEN 'BOOLEAN' THEN 'boolean'
    WHEN 'NULL' THEN 'null'
    WHEN 'ARRAY' THEN 'array'
    WHEN 'OBJECT' THEN 'object'
    ELSE lower(json_type(value))
END"""

# Strings lose their quotes, numbers and booleans read as written, null has no text,
# and an array reads as its elements joined with ", " (null elements skipped).
VALUE_TEXT = """
CASE json_type(value)
    WHEN 'NULL' THEN NULL
    WHEN 'ARRAY' THEN array_to_string(
        list_transform(from_json(value, '["JSON"]'), lambda x: json_extract_string(x, '$')), ', ')
    ELSE json_extract_string(value, '$')
END"""

# Python's whitespace (`str.isspace`) as an RE2 class: the ASCII controls, NEL, and
# every Unicode space, line and paragraph separator (`\p{Z}`).
_WHITESPACE_ONLY = r"'^[\t\n\x{0B}\f\r\x{1C}-\x{1F}\x{85}\p{Z}]*$'"

# A JSON leaf that says "nothing here": null, or a string of whitespace at most.
_BLANK_LEAF = (
    "(json_type(<v>) = 'NULL' OR (json_type(<v>) = 'VARCHAR' "
    f"AND regexp_full_match(json_extract_string(<v>, '$'), {_WHITESPACE_ONLY})))"
)

# A blank value means "nothing extracted" (`siro_assets.crm.values.is_blank` is the
# Python twin): null, an empty or whitespace-only string, `[]`, or an array whose
# elements are all blank, at any depth (`$..*` walks every nested element).
IS_BLANK = f"""
CASE json_type(value)
    WHEN 'ARRAY' THEN coalesce(list_bool_and(list_transform(
        json_extract(value, '$..*'),
        lambda e: json_type(e) = 'ARRAY' OR {_BLANK_LEAF.replace("<v>", "e")})), true)
    ELSE {_BLANK_LEAF.replace("<v>", "value")}
END"""
