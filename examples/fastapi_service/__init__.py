"""A FastAPI service whose events carry the request's ids across every hand-off.

Run: python -m examples.fastapi_service  (uvicorn on 127.0.0.1:8000; SEGMENT_WRITE_KEY to send to Segment)
Try: curl -H 'Authorization: Bearer demo-token-42' -X POST localhost:8000/projects/7/reports
"""
