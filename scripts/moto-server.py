"""moto's DynamoDB-compatible server on 127.0.0.1, one request at a time (moto's
transactions are not safe under concurrent requests). Usage: moto-server.py PORT"""
import sys

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple

run_simple(
    "127.0.0.1",
    int(sys.argv[1]),
    DomainDispatcherApplication(create_backend_app),
    threaded=False,
    request_handler=MotoRequestHandler,
)
