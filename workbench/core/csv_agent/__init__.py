"""The CSV agent: tables, pandas tools behind a jailed worker, verification and export."""

from workbench.core.csv_agent.tables import (
    TableImport,
    TableRecord,
    get_table,
    import_table,
    list_tables,
    read_table,
)

__all__ = [
    "TableImport",
    "TableRecord",
    "get_table",
    "import_table",
    "list_tables",
    "read_table",
]
