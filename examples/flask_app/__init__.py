"""A Flask app whose streamed responses are tracked under the request's ids.

Run: python -m examples.flask_app  (127.0.0.1:5000; SEGMENT_WRITE_KEY to send to Segment)
Try: curl -b 'session=demo-session-42' localhost:5000/projects/7/export
"""
