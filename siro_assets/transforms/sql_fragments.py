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
