"""PDF reports QA files: the lot temperature report, sealed with a content hash."""
