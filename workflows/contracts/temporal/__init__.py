"""How our workflows appear in Temporal: their type names and ids (ids), the search attributes the Temporal UI
and `incidentctl list` filter on (search_attributes), and the task queue priorities that put pages first (priority)."""
