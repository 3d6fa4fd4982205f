"""Text from files placed in DuckDB SQL: values as string literals, headers as quoted identifiers."""


def literal(text: object) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def quote_name(name: str) -> str:
    """A column name as a SQL identifier: export headers hold spaces, slashes and quotes."""
    return '"' + name.replace('"', '""') + '"'
