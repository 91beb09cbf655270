"""`siro/recordings`: the raw table, fetched from the API day by day and swapped in atomically."""
