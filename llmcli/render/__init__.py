"""Turn core results into what a person or a pipeline reads: tables, JSON, TSV, arrays."""
