"""The background job worker over the MongoDB job queue (storage/jobs.py)."""
