"""The Dagster layer: thin wrappers that call the library and report what it did."""
