"""Imports into the directory: the region's CSV templates, the académie's AAF feed, and accounts
migrated from a former ENT. Each reader turns its file into PersonRecords; `engine.apply_records`
writes them in bulk and returns an ImportReport."""
