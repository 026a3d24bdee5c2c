"""Dataset importers: pure parsers that turn UCDP and ACLED files into Vigil events."""
