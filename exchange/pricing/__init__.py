"""Index prices from component feeds."""
