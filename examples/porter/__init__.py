"""A small service modelled on Porter's analytics package (see ../shared/reference-porter.md).

Run it with ``python -m examples.porter``: without a Segment key the events are printed and written
to ``examples/out/events.jsonl``; with SEGMENT_WRITE_KEY (or SEGMENT_CLIENT_KEY) they go to Segment.
"""
