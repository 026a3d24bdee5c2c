"""The threat map, the JOC page and the briefing export: Vigil's own pages, working with
no internet."""
