"""A Celery worker whose tasks are tracked under the scope of whoever enqueued them.

Worker:   celery -A examples.celery_worker.app worker -P prefork -c 2 --max-tasks-per-child 5
Producer: python -m examples.celery_worker --count 10 --user 42 --project 7
The broker is a folder (``filesystem://``, ``EXAMPLE_BROKER_DIR``): no server needed.
"""
